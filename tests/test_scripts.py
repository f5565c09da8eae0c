"""What a person runs by hand besides the app: the benchmarks after the quick start, and the
fake ComfyUI on its own (to try the page without ComfyUI)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests

from .support.data import ROOT
from .support.fake_llm import dead_url

SETUP_HINT = ("install the test requirements first: scripts/test.sh sets them up "
              "(or .venv/bin/pip install -r requirements-dev.txt")


def run_script(script: str, without_module: str | None = None, path: str | None = None):
    """Run benchmarks/<script> as `python benchmarks/<script>` would, as if a package or the programs were missing."""
    code = (f"import runpy, sys; sys.path.insert(0, 'benchmarks'); sys.argv = ['benchmarks/{script}']; "
            + (f"sys.modules[{without_module!r}] = None; " if without_module else "")  # import fails as when absent
            + f"runpy.run_path('benchmarks/{script}', run_name='__main__')")
    env = {"PATH": path} if path is not None else None
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("script,kwargs,missing", [
    ("bench.py", {"without_module": "jiwer"}, "the Python package jiwer"),
    ("bench.py", {"path": "/nonexistent"}, "the program espeak-ng and the program ffmpeg"),
    ("bench_asr.py", {"without_module": "jiwer"}, "the Python package jiwer"),
])
def test_benchmark_says_what_to_install_after_the_quick_start(script, kwargs, missing):
    result = run_script(script, **kwargs)
    assert result.returncode != 0
    assert f"{script} needs {missing}: {SETUP_HINT}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_fake_comfyui_runs_on_its_own_and_stops_on_ctrl_c():
    port = dead_url("").rsplit(":", 1)[1]  # a free one; a person gets 8188
    command = [sys.executable, "-m", "tests.support.fake_comfy", "--port", port, "--step-s", "0.01"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith(f"fake ComfyUI at http://127.0.0.1:{port} ")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/system_stats", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the fake ComfyUI did not answer"
            time.sleep(0.1)
        checkpoints = requests.get(url + "/object_info/CheckpointLoaderSimple", timeout=5).json()
        assert "tiny-sd15-random.safetensors" in json.dumps(checkpoints)
        # a second one cannot take the same port, and says so
        taken = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert taken.returncode == 1 and f"Port {port} is in use" in taken.stderr
        process.send_signal(signal.SIGINT)  # Ctrl+C
        assert process.wait(timeout=15) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

