"""scripts/bootstrap.py, the set-up that needs no bash: it creates the environment, installs the
requirements once (again only when they change), and runs the app's commands or the tests.

It runs on a copy of the project whose requirements.txt names one tiny wheel made here, so
nothing is downloaded; the app's real dependencies are borrowed from the environment running
these tests (support/project.py).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .support.fake_llm import dead_url
from .support.project import borrow_dependencies, copy_project

pytestmark = pytest.mark.slow

COPIED = ("app.py", "speech2image", "templates", "static", "workflows", "scripts/bootstrap.py",
          "scripts/system-packages.sh", "pytest.ini")


def tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel, written by hand: pip installs it without an index."""
    files = {"tinydep/__init__.py": b"VALUE = 42\n",
             "tinydep-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
             "tinydep-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for name, data in files.items()) + "tinydep-1.0.dist-info/RECORD,,\n"
    path = folder / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("tinydep-1.0.dist-info/RECORD", record)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = copy_project(COPIED, tmp_path_factory.mktemp("project"))
    (root / "requirements.txt").write_text(f"# the app's requirements, here one tiny wheel\n{tiny_wheel(root)}\n")
    (root / "requirements-dev.txt").write_text("# nothing more for these tests\n")
    (root / "requirements-coqui.txt").write_text("# nothing more for these tests\n")
    (root / "requirements-llama.txt").write_text("# nothing more for these tests\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_tiny.py").write_text("import tinydep\n\n\ndef test_tiny():\n    assert tinydep.VALUE == 42\n")
    return root


def bootstrap(project: Path, *args, cwd: Path | None = None, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPEECH2IMAGE_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", SPEECH2IMAGE_DATA_DIR=str(project / "data"), SPEECH2IMAGE_LLM_URL="off",
               SPEECH2IMAGE_TTS_ENGINE="off", SPEECH2IMAGE_COMFYUI_URL=dead_url(""),
               SPEECH2IMAGE_PORT=dead_url("").rsplit(":", 1)[1])
    return subprocess.run([sys.executable, str(project / "scripts" / "bootstrap.py"), *args], cwd=cwd or project,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_setup_once_then_only_when_the_requirements_change(project):
    first = bootstrap(project, "setup")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"== creating {project / '.venv'}" in first.stdout and "== installing requirements.txt" in first.stdout
    python = project / ".venv" / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import tinydep"]).returncode == 0
    again = bootstrap(project, "setup")
    assert again.returncode == 0 and again.stdout == ""  # nothing to do
    with open(project / "requirements.txt", "a") as requirements:
        requirements.write("# changed\n")
    changed = bootstrap(project, "setup")
    assert "creating" not in changed.stdout and "== installing requirements.txt" in changed.stdout


def test_the_apps_commands_run_in_the_environment_from_anywhere(project, tmp_path):
    assert bootstrap(project, "setup").returncode == 0
    borrow_dependencies(project / ".venv" / "bin" / "python")  # the app's own dependencies, not downloaded
    result = bootstrap(project, "doctor", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    python = next(c for c in answer["checks"] if c["name"] == "python")
    assert python["text"].endswith(f"({project / '.venv' / 'bin' / 'python'})")
    assert answer["ok"]
    tests = bootstrap(project, "test", "-q", "-p", "no:cacheprovider")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout and "requirements-llama.txt" not in tests.stdout  # the quick run
    every = bootstrap(project, "test", "--all", "-q", "-p", "no:cacheprovider")
    assert every.returncode == 0, every.stdout + every.stderr
    assert ("== installing requirements.txt, requirements-dev.txt, requirements-llama.txt, requirements-coqui.txt"
            in every.stdout) and "1 passed" in every.stdout


def test_a_bad_setup_choice_is_refused(project):
    result = bootstrap(project, "setup", "everything")
    assert result.returncode == 2 and "choose one of app, test, all" in result.stderr
