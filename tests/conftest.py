"""Shared fixtures: a real app server on a free loopback port, spoken clips, artifacts."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from speech2image import create_app

from .support import speech
from .support.fake_comfy import FakeComfyUI, Knobs

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


class LiveServer:
    """The app served by werkzeug's threaded server in a background thread, as a browser sees it."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=10)

    def wait_for_whisper(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = requests.get(self.url + "/api/health", timeout=5).json()["whisper"]
            if status["state"] in ("ready", "error"):
                return status
            time.sleep(0.2)
        raise TimeoutError("Whisper did not load")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def fake_comfy():
    with FakeComfyUI(Knobs(step_delay_s=0.05)) as server:
        yield server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, fake_comfy):
    """One warm app for the whole session: the Whisper model loads once, as in production."""
    app = create_app({"data_dir": str(tmp_path_factory.mktemp("instance")), "max_audio_s": 30.0, "llm_url": "off",
                      "comfyui_url": fake_comfy.url, "steps": 8, "width": 128, "height": 96})
    with LiveServer(app) as server:
        status = server.wait_for_whisper()
        assert status["state"] == "ready", status
        yield server


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def make_clip(clips_dir):
    """make_clip(text, engine='piper'|'espeak', fmt='wav'|'webm'|'ogg') -> Path, cached per session."""
    cache: dict[tuple, Path] = {}

    def make(text: str, engine: str = "piper", fmt: str = "wav") -> Path:
        key = (text, engine, fmt)
        if key not in cache:
            stem = f"{engine}-{len(cache):03d}"
            wav = clips_dir / f"{stem}.wav"
            (speech.piper_wav if engine == "piper" else speech.espeak_wav)(text, wav)
            cache[key] = wav if fmt == "wav" else speech.encode(wav, fmt)
        return cache[key]

    return make
