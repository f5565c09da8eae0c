"""The app served as a browser sees it: werkzeug's threaded server on a free loopback port."""
from __future__ import annotations

import threading
import time

import requests
from werkzeug.serving import make_server


class LiveServer:
    """The app served by werkzeug's threaded server in a background thread, as a browser sees it.
    Tests get one from the ``serve`` fixture; ``with LiveServer(app) as server:`` serves for a block."""

    def __init__(self, app, port: int = 0):
        """``port``: a fixed one, to serve again where a stopped server was (0: any free port)."""
        self.app = app
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.stopped = False

    def start(self) -> "LiveServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        """The port stops answering, as when the app is stopped; a second call does nothing."""
        if self.stopped:
            return
        self.stopped = True
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_for_whisper(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = requests.get(self.url + "/api/health", timeout=5).json()["whisper"]
            if status["state"] in ("ready", "error"):
                return status
            time.sleep(0.2)
        raise TimeoutError("Whisper did not load")
