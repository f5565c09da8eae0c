"""Fixtures only; what tests and scripts share otherwise lives in tests/support.

- ``make_app(**overrides)``: a fresh app with fast defaults (below), on this test's data folder
- ``client``: a Flask test client of ``make_app()``
- ``serve(**config)``: ``make_app(**config)`` served on a loopback port (a ``LiveServer``), stopped at the test's end
- ``comfy``: a fresh fake ComfyUI for this test; ``fake_llm``: a fresh fake LLM server
- ``live_server``: one warm app for the whole session (Whisper loads once), on ``fake_comfy``
- ``make_clip``, ``clips_dir``: spoken clips, cached per session; ``artifacts_dir``: screenshots
- ``models_dir``: the session's models folder (Whisper base joined once)
- ``wyoming_whisper``, ``wyoming_piper``: the real Wyoming speech servers, one each per session;
  ``openai_whisper``: the real faster-whisper-server (OpenAI-compatible), per session, skipped where not installed;
  ``openai_audio``: a fresh OpenAI-compatible audio double; ``garbage_server``: a port that is no Wyoming
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.support")  # asserts in the helpers explain themselves too

from speech2image import create_app  # noqa: E402

from .support import speech  # noqa: E402
from .support.browser import CHROMIUM  # noqa: E402
from .support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402
from .support.fake_llm import FakeLlmServer  # noqa: E402
from .support.live import LiveServer  # noqa: E402
from .support.speech_servers import (  # noqa: E402
    FakeOpenAiAudio,
    GarbageServer,
    OpenAiWhisperServer,
    WyomingServer,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def make_app(tmp_path):
    """make_app(**overrides) -> app. Fast defaults: no LLM, no voice, no model loading at start,
    a ComfyUI address where nothing listens, 4 steps at 64x64. A test passes what its assertions
    depend on. Every app a test makes shares one data folder, ``tmp_path / "instance"``, so a
    second call is the same server restarted."""

    def make(**overrides):
        return create_app({"data_dir": str(tmp_path / "instance"), "llm_url": "off", "tts_engine": "off",
                           "preload": False, "comfyui_url": "http://127.0.0.1:9", "steps": 4, "width": 64,
                           "height": 64, **overrides})

    return make


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def serve(make_app):
    """serve(**config) -> LiveServer: ``make_app(**config)`` served on a free loopback port, started now
    and stopped at the test's end (``server.stop()`` stops it sooner: a restart serves again on the same
    data folder). With ``port`` set, the server listens there, as the app does: a page that pointed at a
    stopped server finds the new one."""
    servers: list[LiveServer] = []

    def serve(**config):
        server = LiveServer(make_app(**config), port=config.get("port", 0))
        servers.append(server)
        return server.start()

    yield serve
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def comfy():
    """A fake ComfyUI of this test's own: what it was sent starts empty."""
    with FakeComfyUI(Knobs(step_delay_s=0.03)) as server:
        yield server


@pytest.fixture
def fake_llm():
    """A fake OpenAI-compatible server with its default behaviour; tests may change ``.behaviour``."""
    with FakeLlmServer() as server:
        yield server


@pytest.fixture(scope="module")
def playwright():
    """Playwright driving Debian's chromium (tests/support/browser.py launches it)."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def fake_comfy():
    """The fake ComfyUI behind ``live_server``, shared by the whole session."""
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
def models_dir(tmp_path_factory) -> Path:
    """One models folder for the session's apps that hear other languages: Whisper base is joined there once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def make_clip(clips_dir):
    """make_clip(text, engine='piper'|'espeak'|'kokoro', fmt='wav'|'webm'|'ogg', language='en') -> Path, cached per
    session; kokoro speaks Japanese (language 'ja') or, through espeak-ng's IPA, another language ('de')."""
    cache: dict[tuple, Path] = {}

    def make(text: str, engine: str = "piper", fmt: str = "wav", language: str = "ja") -> Path:
        key = (text, engine, fmt, language if engine == "kokoro" else None)
        if key not in cache:
            stem = f"{engine}-{len(cache):03d}"
            wav = clips_dir / f"{stem}.wav"
            if engine == "kokoro":
                speech.kokoro_wav(text, wav, language)
            else:
                (speech.piper_wav if engine == "piper" else speech.espeak_wav)(text, wav)
            cache[key] = wav if fmt == "wav" else speech.encode(wav, fmt)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def wyoming_whisper(tmp_path_factory):
    """The real wyoming-faster-whisper on tiny.en, for the whole session."""
    with WyomingServer("whisper", tmp_path_factory.mktemp("wyoming-whisper")) as server:
        yield server


@pytest.fixture(scope="session")
def wyoming_piper(tmp_path_factory):
    """The real wyoming-piper speaking en_US-joe-medium, for the whole session."""
    with WyomingServer("piper", tmp_path_factory.mktemp("wyoming-piper")) as server:
        yield server


@pytest.fixture(scope="session")
def openai_whisper(tmp_path_factory):
    """The real faster-whisper-server on tiny.en, for the whole session; skipped where it is not installed."""
    if not OpenAiWhisperServer.available():
        pytest.skip("faster-whisper-server is not installed (pip install -r requirements-dev.txt)")
    with OpenAiWhisperServer(tmp_path_factory.mktemp("faster-whisper-server")) as server:
        yield server


@pytest.fixture
def openai_audio():
    with FakeOpenAiAudio() as server:
        yield server


@pytest.fixture
def garbage_server():
    with GarbageServer() as server:
        yield server
