"""The server the app runs on: Werkzeug on this computer, gunicorn's threaded worker on a network,
with websockets working through either, and one line that says what is served where."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
import websocket

from speech2image.config import Settings
from speech2image.serve import choose_server

from .support.app_process import free_port
from .support.data import ROOT


@pytest.mark.parametrize("host,server,chosen", [
    ("127.0.0.1", "auto", "werkzeug"), ("::1", "auto", "werkzeug"), ("localhost", "auto", "werkzeug"),
    ("0.0.0.0", "auto", "gunicorn"), ("192.168.1.20", "auto", "gunicorn"), ("0.0.0.0", "werkzeug", "werkzeug"),
    ("127.0.0.1", "gunicorn", "gunicorn"),
])
def test_the_server_follows_the_address(host, server, chosen):
    assert choose_server(Settings(host=host, server=server, token="t" * 24)) == chosen


def test_an_unknown_server_is_refused_by_name():
    with pytest.raises(ValueError, match="SPEECH2IMAGE_SERVER must be one of auto, werkzeug, gunicorn"):
        choose_server(Settings(server="apache"))


@pytest.mark.parametrize("server,says", [
    ("auto", "for this computer only (Flask's built-in server"),
    ("gunicorn", "with gunicorn (1 worker, 64 threads)"),
])
def test_app_py_serves_pages_api_and_websockets(tmp_path, server, says):
    port = free_port()
    env = {**os.environ, "SPEECH2IMAGE_SERVER": server, "SPEECH2IMAGE_PORT": str(port),
           "SPEECH2IMAGE_DATA_DIR": str(tmp_path), "SPEECH2IMAGE_PRELOAD": "0", "SPEECH2IMAGE_LLM_URL": "off",
           "SPEECH2IMAGE_TTS_ENGINE": "off", "SPEECH2IMAGE_COMFYUI_URL": "http://127.0.0.1:9"}
    log = tmp_path / "app.log"
    with open(log, "wb") as out:
        app = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/api/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert app.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert "Record" in requests.get(url + "/", timeout=5).text
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws?session=serve-test-1", timeout=10)
        assert json.loads(ws.recv())["type"] == "hello"
        ws.close()
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=20)
    output = log.read_text()
    assert f"speech2image is serving http://127.0.0.1:{port}" in output and says in output
    assert "development server" not in output  # no unexplained red warning
