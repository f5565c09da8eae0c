"""The app as users run it: ``python app.py`` in its own process, so a test can kill it hard
(SIGKILL), stop it (SIGTERM) and start it again on the same data folder."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from speech2image.jobs import FINISHED_STAGES

from .data import ROOT

FINISHED = FINISHED_STAGES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """``python app.py`` on a free loopback port with SPEECH2IMAGE_* settings; its log goes to
    ``log_path`` (appended, so one file tells the story of every restart)."""

    def __init__(self, data_dir: Path, comfy_url: str, log_path: Path | None = None, port: int | None = None,
                 **settings):
        """``port``: an earlier process's, to restart it where a page still points."""
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path or self.data_dir.parent / "app.log")
        values = {"data_dir": str(self.data_dir), "port": self.port, "host": "127.0.0.1", "comfyui_url": comfy_url,
                  "llm_url": "off", "tts_engine": "off", "preload": "false", "steps": 6, "width": 64, "height": 64,
                  **settings}
        self.env = {**os.environ, **{f"SPEECH2IMAGE_{k.upper()}": str(v) for k, v in values.items()}}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "AppProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode}; see {self.log_path}")
            try:
                requests.get(self.url + "/api/settings", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise TimeoutError(f"the app did not answer within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """A crash or a power cut, as far as this app can tell."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 10.0) -> float:
        """SIGTERM; the seconds it took to exit."""
        t0 = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def job(self, job_id: str) -> dict:
        return requests.get(f"{self.url}/api/jobs/{job_id}", timeout=5).json()

    def wait_for(self, job_id: str, predicate, timeout: float = 60.0, poll_s: float = 0.02) -> dict:
        deadline = time.monotonic() + timeout
        state = {}
        while time.monotonic() < deadline:
            state = self.job(job_id)
            if predicate(state):
                return state
            time.sleep(poll_s)
        raise TimeoutError(f"job {job_id} never matched; last state {state}; see {self.log_path}")

    def wait_finished(self, job_id: str, timeout: float = 60.0) -> dict:
        return self.wait_for(job_id, lambda s: s.get("stage") in FINISHED, timeout, poll_s=0.1)
