"""`pip install .` into a fresh virtual environment gives a working `speech2image` command.

The fresh environment gets our package only; its dependencies are not downloaded again but
borrowed from the environment running the tests (support/project.py). The command then runs
outside the repository, so the page, its scripts and the workflows it finds can only be those
the package installed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .support.data import ROOT
from .support.fake_comfy import FakeComfyUI
from .support.fake_llm import dead_url
from .support.project import borrow_dependencies, copy_project

pytestmark = pytest.mark.slow

SOURCES = ("pyproject.toml", "README.md", "requirements.txt", "requirements-dev.txt", "requirements-llama.txt",
           "requirements-coqui.txt", "speech2image", "templates", "static", "workflows")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with speech2image installed from a copy of the sources; its bin folder."""
    root = tmp_path_factory.mktemp("package")
    source = copy_project(SOURCES, root / "source")  # a copy: the build's own folders never land in the checkout
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    borrow_dependencies(python)
    build = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(source)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    return python.parent


def run(bin_dir: Path, *args, env: dict, cwd: Path, timeout=180):
    return subprocess.run([str(bin_dir / "speech2image"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})


def test_the_installed_command_runs_doctor_outside_the_checkout(installed, tmp_path, fake_llm):
    where = subprocess.run([str(installed / "python"), "-c", "import speech2image; print(speech2image.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(installed.parent) and not Path(where).is_relative_to(ROOT)
    with FakeComfyUI() as comfy:
        # No data folder named: an installed app keeps its data in the user's data folder.
        result = run(installed, "doctor", "--json", cwd=tmp_path, env={
            "XDG_DATA_HOME": str(tmp_path / "xdg"), "SPEECH2IMAGE_PORT": dead_url("").rsplit(":", 1)[1],
            "SPEECH2IMAGE_COMFYUI_URL": comfy.url, "SPEECH2IMAGE_LLM_URL": fake_llm.url})
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    checks = {c["name"]: c for c in answer["checks"]}
    assert answer["ok"] and all(c["ok"] for c in answer["checks"]), result.stdout
    assert checks["page"]["text"] == f"the page's files are in {Path(where).parent / 'site'}"
    assert str(tmp_path / "xdg" / "speech2image") in checks["data"]["text"]
    assert checks["comfyui"]["details"]["version"] == "0.3.64"


def test_the_installed_app_serves_its_page_and_stops_on_sigterm(installed, tmp_path):
    port = dead_url("").rsplit(":", 1)[1]
    env = {**os.environ, "SPEECH2IMAGE_PORT": port, "SPEECH2IMAGE_DATA_DIR": str(tmp_path / "data"),
           "SPEECH2IMAGE_PRELOAD": "0", "SPEECH2IMAGE_LLM_URL": "off", "SPEECH2IMAGE_COMFYUI_URL": dead_url("")}
    server = subprocess.Popen([str(installed / "speech2image")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                page = requests.get(url + "/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
                time.sleep(0.2)
        script = requests.get(url + "/static/js/main.js", timeout=5)
        assert page.status_code == 200 and "<title>speech2image</title>" in page.text
        assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
        workflows = requests.get(url + "/api/comfyui", timeout=10).json()["workflows"]
        assert "txt2img.json" in workflows
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
