"""Starting the person's own ComfyUI when none answers, with a stand-in main.py that starts like
ComfyUI's would (slow, crashing at once, crashing later, deaf to SIGTERM), and once with a real
ComfyUI where one is set up (SPEECH2IMAGE_TEST_REAL_COMFYUI_DIR)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import requests

from speech2image.picture.comfy import ComfyDiscovery
from speech2image.picture.comfy.launcher import ComfyLauncher, python_for

from .support.comfy_standin import runs, write_main
from .support.fake_comfy import FakeComfyUI
from .support.fake_llm import FakeLlmServer, dead_url
from .support.relay import run


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "State:\tZ" in status.read_text())


@pytest.fixture
def launch(tmp_path):
    """launch(**scenario) -> a configured ComfyLauncher on a free port, its stand-in folder in tmp_path/ComfyUI.
    Every launcher is stopped at the end of the test."""
    made = []

    def launch(python=sys.executable, url=None, start_timeout_s=60.0, max_restarts=3, stop_grace_s=5.0, **scenario):
        folder = tmp_path / "ComfyUI"
        write_main(folder, **scenario)
        launcher = ComfyLauncher(tmp_path / "instance" / "comfyui.log", url or dead_url(""), start_timeout_s=start_timeout_s,
                                 max_restarts=max_restarts, stop_grace_s=stop_grace_s, poll_s=0.1)
        launcher.configure(str(folder), python)
        made.append(launcher)
        return launcher

    yield launch
    for launcher in made:
        launcher.stop()


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_slow_start_is_waited_for_and_the_child_stopped_on_exit(launch, tmp_path):
    launcher = launch(delay_s=2.0)
    assert launcher.start_if_idle() and launcher.state == "starting"
    launcher.wait_ready()
    assert launcher.state == "running"
    status = launcher.status()
    (run,) = runs(tmp_path / "ComfyUI")
    assert status["pid"] == run["pid"]
    assert run["argv"] == ["--listen", "127.0.0.1", "--port", launcher.url.rsplit(":", 1)[1],
                           "--preview-method", "auto", "--disable-auto-launch"]
    assert requests.get(launcher.url + "/system_stats", timeout=5).json()["system"]["comfyui_version"]
    assert "To see the GUI go to" in Path(status["log"]).read_text()  # its output is kept in the data folder
    launcher.stop()
    assert launcher.state == "stopped" and not alive(run["pid"])
    assert launcher.status()["restarts"] == 0  # stopping it is no crash to restart from


def test_a_main_py_that_exits_at_once_is_retried_a_few_times_then_explained(launch, tmp_path):
    launcher = launch(fail_runs=99, max_restarts=2)
    started = time.monotonic()
    launcher.start_if_idle()
    with pytest.raises(Exception) as failure:
        launcher.wait_ready()
    assert time.monotonic() - started < 30
    message = failure.value.message
    assert "ComfyUI exited with status 1 while starting (started 3 times" in message
    assert "ModuleNotFoundError: No module named 'torch'" in message  # its last log lines say why
    assert "A Python package ComfyUI needs is missing: is SPEECH2IMAGE_COMFYUI_PYTHON the Python" in message
    assert len(runs(tmp_path / "ComfyUI")) == 3 and launcher.state == "failed"
    assert launcher.status()["error"] == message
    assert not launcher.start_if_idle()  # no endless restarts


def test_a_crash_later_is_restarted(launch, tmp_path):
    launcher = launch(crash_runs=1, crash_after_s=1.0)
    launcher.start_if_idle()
    launcher.wait_ready()
    first = runs(tmp_path / "ComfyUI")[0]["pid"]
    wait_for(lambda: len(runs(tmp_path / "ComfyUI")) == 2)
    launcher.wait_ready()
    second = runs(tmp_path / "ComfyUI")[1]["pid"]
    assert second != first and not alive(first) and alive(second)
    assert launcher.status()["restarts"] == 1 and launcher.state == "running"


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_time(launch, tmp_path):
    launcher = launch(ignore_sigterm=True, stop_grace_s=1.0)
    launcher.start_if_idle()
    launcher.wait_ready()
    pid = runs(tmp_path / "ComfyUI")[0]["pid"]
    started = time.monotonic()
    launcher.stop()
    assert 0.9 <= time.monotonic() - started < 15
    assert not alive(pid)


def test_starting_has_a_time_limit(launch, tmp_path):
    launcher = launch(delay_s=60.0, start_timeout_s=2.0)
    launcher.start_if_idle()
    with pytest.raises(Exception) as failure:
        launcher.wait_ready()
    assert "ComfyUI did not answer within 2 s of starting, so it was stopped" in failure.value.message
    assert "Checkpoint files will always be loaded safely." in failure.value.message
    assert not alive(runs(tmp_path / "ComfyUI")[0]["pid"])


def test_a_python_that_cannot_run_is_named(launch, tmp_path):
    not_python = tmp_path / "python"
    not_python.write_text("not a program")
    launcher = launch(python=str(not_python))
    launcher.start_if_idle()
    with pytest.raises(Exception) as failure:
        launcher.wait_ready()
    assert f"The Python for ComfyUI, {not_python}, is not an executable file" in failure.value.message
    assert runs(tmp_path / "ComfyUI") == []


def test_a_folder_without_main_py_is_named(tmp_path):
    launcher = ComfyLauncher(tmp_path / "comfyui.log", dead_url(""))
    launcher.configure(str(tmp_path), sys.executable)
    launcher.start_if_idle()
    with pytest.raises(Exception) as failure:
        launcher.wait_ready()
    assert f"There is no main.py in {tmp_path}" in failure.value.message
    launcher.configure(str(tmp_path / "missing"), sys.executable)
    launcher.start_if_idle()
    with pytest.raises(Exception) as failure:
        launcher.wait_ready()
    assert "does not exist" in failure.value.message


def test_a_port_taken_by_something_else_is_said(launch, tmp_path):
    with FakeLlmServer() as other:
        launcher = launch(url=other.url.removesuffix("/v1"))  # the launch port is taken by a vLLM-like server
        launcher.start_if_idle()
        with pytest.raises(Exception) as failure:
            launcher.wait_ready()
    assert f"Port {launcher.port} is taken by something that is not ComfyUI (something that is not ComfyUI " \
           "answered HTTP 404 to /system_stats" in failure.value.message
    assert runs(tmp_path / "ComfyUI") == []


def test_a_comfyui_already_running_is_used_and_never_stopped(launch, tmp_path):
    with FakeComfyUI() as theirs:
        launcher = launch()
        discovery = ComfyDiscovery((theirs.url,), launcher=launcher)
        found = discovery.find()
        discovery.close()
        assert (found.url, found.how) == (theirs.url, "discovered")
        assert requests.get(theirs.url + "/system_stats", timeout=5).ok  # still there after our exit
    assert runs(tmp_path / "ComfyUI") == [] and launcher.state == "idle"


def test_the_folders_own_python_is_preferred(tmp_path):
    folder = tmp_path / "ComfyUI"
    (folder / "venv" / "bin").mkdir(parents=True)
    assert python_for(str(folder)) not in (None, str(folder / "venv" / "bin" / "python"))  # PATH's
    (folder / "venv" / "bin" / "python").symlink_to(sys.executable)
    assert python_for(str(folder)) == str(folder / "venv" / "bin" / "python")
    portable = tmp_path / "portable"
    (portable / "python_embeded").mkdir(parents=True)
    (portable / "ComfyUI").mkdir()
    (portable / "python_embeded" / "python.exe").write_text("")
    assert python_for(str(portable / "ComfyUI")) == str(portable / "python_embeded" / "python.exe")
    assert python_for(str(folder), "/opt/my/python") == "/opt/my/python"


def launching(tmp_path) -> dict:
    """No ComfyUI answers; the app may start the one in ``tmp_path / "ComfyUI"``."""
    return {"comfyui_url": "", "comfyui_discover": dead_url(""), "comfyui_python": sys.executable,
            "comfyui_dir": str(tmp_path / "ComfyUI")}


def test_a_job_waits_for_the_comfyui_the_app_starts(serve, tmp_path):
    write_main(tmp_path / "ComfyUI", delay_s=1.5)
    server = serve(**launching(tmp_path))
    _, events = run(server, prompt="a kite", timeout=90)
    health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
    (started,) = runs(tmp_path / "ComfyUI")
    assert alive(started["pid"])
    server.app.extensions["speech2image"].pipeline.shutdown()  # what the app's exit does
    server.stop()
    assert {"type": "waiting", "text": "Starting ComfyUI…"}.items() <= next(
        e for e in events if e["type"] == "waiting").items()
    assert events[-1]["stage"] == "done" and events[-1]["snapshot"]["render"]["server"] == health["url"]
    assert health["state"] == "ready" and health["how"] == "started"
    assert health["servers"][0]["folder"] == str(tmp_path / "ComfyUI")
    assert not alive(started["pid"])


def test_a_comfyui_without_a_usable_gpu_is_started_again_on_the_cpu_and_said_so(serve, tmp_path):
    write_main(tmp_path / "ComfyUI", no_gpu=True)
    server = serve(**launching(tmp_path))
    snapshot, _ = run(server, prompt="a kite", timeout=90)
    health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
    server.app.extensions["speech2image"].pipeline.shutdown()
    first, second = runs(tmp_path / "ComfyUI")
    assert "--cpu" not in first["argv"] and second["argv"][-1] == "--cpu"
    assert snapshot["stage"] == "done" and health["state"] == "ready"
    note = health["servers"][0]["note"]
    assert note.startswith("ComfyUI found no GPU it can use here") and "started again with --cpu" in note
    assert "Found no NVIDIA driver on your system" in note


def test_with_an_address_and_a_folder_set_ours_is_started_at_that_address(serve, tmp_path):
    """Nothing answers at the ComfyUI address the person set: the folder's ComfyUI starts on its port."""
    write_main(tmp_path / "ComfyUI")
    url = dead_url("")
    server = serve(**{**launching(tmp_path), "comfyui_url": url})
    snapshot, _ = run(server, prompt="a kite", timeout=90)
    server.app.extensions["speech2image"].pipeline.shutdown()
    (started,) = runs(tmp_path / "ComfyUI")
    assert started["argv"][started["argv"].index("--port") + 1] == url.rsplit(":", 1)[1]
    assert started["argv"][started["argv"].index("--listen") + 1] == "127.0.0.1"
    assert snapshot["stage"] == "done" and snapshot["render"]["server"] == url


def test_a_comfyui_that_cannot_start_is_explained_on_the_page(serve, tmp_path):
    write_main(tmp_path / "ComfyUI", fail_runs=99)
    server = serve(**launching(tmp_path))
    snapshot, _ = run(server, prompt="a kite", timeout=90)
    health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
    assert snapshot["stage"] == "prompt_ready"
    assert "ComfyUI exited with status 1 while starting" in snapshot["notes"][-1]
    assert "No module named 'torch'" in snapshot["notes"][-1]
    assert health["state"] == "unreachable" and "ComfyUI log" in health["fix"]
    assert "No module named 'torch'" in health["servers"][0]["error"]


def test_the_folder_and_python_are_checked_when_set_on_the_page(make_app, tmp_path):
    client = make_app().test_client()
    answer = client.post("/api/settings", json={"comfyui_dir": str(tmp_path)})
    assert answer.status_code == 400
    assert "must be your ComfyUI folder, the one that holds main.py" in answer.get_json()["error"]["message"]
    answer = client.post("/api/settings", json={"comfyui_python": str(tmp_path / "nope")})
    assert answer.status_code == 400 and "Python you can run" in answer.get_json()["error"]["message"]
    write_main(tmp_path / "ComfyUI")
    answer = client.post("/api/settings", json={"comfyui_dir": str(tmp_path / "ComfyUI"),
                                                "comfyui_python": sys.executable})
    assert answer.status_code == 200 and answer.get_json()["settings"]["comfyui_dir"] == str(tmp_path / "ComfyUI")


REAL_DIR = os.environ.get("SPEECH2IMAGE_TEST_REAL_COMFYUI_DIR", "")


@pytest.mark.skipif(not REAL_DIR, reason="no real ComfyUI set up: set SPEECH2IMAGE_TEST_REAL_COMFYUI_DIR "
                                         "(and _PYTHON, _ARGS) to run it")
def test_a_real_comfyui_is_started_and_stopped(tmp_path):
    launcher = ComfyLauncher(tmp_path / "comfyui.log", dead_url(""), start_timeout_s=300.0, poll_s=0.5)
    launcher.configure(REAL_DIR, os.environ.get("SPEECH2IMAGE_TEST_REAL_COMFYUI_PYTHON", ""),
                       os.environ.get("SPEECH2IMAGE_TEST_REAL_COMFYUI_ARGS", ""))  # --cpu for a CPU-only torch
    try:
        launcher.start_if_idle()
        launcher.wait_ready()
        stats = requests.get(launcher.url + "/system_stats", timeout=10).json()
        pid = launcher.status()["pid"]
        assert stats["system"]["comfyui_version"]
        argv = stats["system"]["argv"]
        assert argv[argv.index("--preview-method") + 1] == "auto" and "--disable-auto-launch" in argv
        assert "--cpu" not in argv or stats["devices"][0]["type"] == "cpu"
    finally:
        launcher.stop()
    assert launcher.state == "stopped" and not alive(pid)
