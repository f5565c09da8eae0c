"""A fake OpenAI-compatible server: a real HTTP server on 127.0.0.1 for the paths a small
real model cannot show (json_schema answers, prose around JSON, 500s, hangs).

Its answers copy the shapes of llama-cpp-python's server. The repository keeps no recording
of that server; tests/test_llm_llama_cpp.py runs the real one (SmolLM2-135M) and checks the
same paths: the model list, json_schema refused with a 500 and json_object used instead,
streaming.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

# llama-cpp-python's refusal of json_schema, verbatim in shape.
LLAMA_CPP_REFUSAL = {
    "error": {
        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


@dataclass
class Behaviour:
    models: list[str] = field(default_factory=lambda: ["fake-model-7b", "fake-model-1b"])
    reply: str | Callable[[dict], str] = (
        '{"prompt": "a cat wearing a red hat, soft lighting, highly detailed", '
        '"negative_prompt": "blurry", "caption": "Here is a cat in a red hat."}'
    )
    refuse_formats: set[str] = field(default_factory=set)  # response_format types answered 500
    status: int = 200  # anything else: that status with an error body
    delay_s: float = 0.0  # before answering /chat/completions
    hang: bool = False  # accept the request, never answer
    finish_reason: str = "stop"
    token_delay_s: float = 0.0  # between streamed chunks, to watch a page fill live
    models_body: object = None  # answer GET /v1/models with this instead of the OpenAI-style list
    bare_event_stream: bool = False  # stream like llama.cpp's llama-server: no charset, JSON in raw UTF-8


class FakeLlmServer:
    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.requests: list[dict] = []  # bodies of /chat/completions calls, in order
        self.release = threading.Event()  # set on shutdown so hanging handlers end
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send_json(self, status: int, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/v1/models" and server.behaviour.models_body is not None:
                    self.send_json(200, server.behaviour.models_body)
                elif self.path == "/v1/models":
                    data = [{"id": m, "object": "model", "owned_by": "me", "permissions": []} for m in server.behaviour.models]
                    self.send_json(200, {"object": "list", "data": data})
                else:
                    self.send_json(404, {"detail": "Not Found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/chat/completions":
                    return self.send_json(404, {"detail": "Not Found"})
                server.requests.append(body)
                b = server.behaviour
                if b.hang:
                    server.release.wait(60)
                    return
                if b.delay_s:
                    server.release.wait(b.delay_s)
                if b.status != 200:
                    return self.send_json(b.status, {"error": {"message": "model crashed", "type": "internal_server_error"}})
                fmt = (body.get("response_format") or {}).get("type", "text")
                if fmt in b.refuse_formats:
                    return self.send_json(500, LLAMA_CPP_REFUSAL)
                content = b.reply(body) if callable(b.reply) else b.reply
                if body.get("stream"):
                    return self.stream(body, content)
                self.send_json(200, {
                    "id": f"chatcmpl-{uuid.uuid4()}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"content": content, "role": "assistant"},
                                 "logprobs": None, "finish_reason": b.finish_reason}],
                    "usage": {"prompt_tokens": 40, "completion_tokens": 40, "total_tokens": 80},
                })

            def stream(self, body, content):
                self.send_response(200)
                bare = server.behaviour.bare_event_stream
                self.send_header("Content-Type", "text/event-stream" if bare else "text/event-stream; charset=utf-8")
                self.send_header("Connection", "close")
                self.end_headers()
                cid = f"chatcmpl-{uuid.uuid4()}"

                def chunk(delta, finish=None):
                    data = {"id": cid, "model": body.get("model"), "created": int(time.time()),
                            "object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
                    self.wfile.write(f"data: {json.dumps(data, ensure_ascii=not bare)}\r\n\r\n".encode())
                    self.wfile.flush()

                chunk({"role": "assistant"})
                for i in range(0, len(content), 7):
                    chunk({"content": content[i:i + 7]})
                    if server.behaviour.token_delay_s:
                        time.sleep(server.behaviour.token_delay_s)
                chunk({}, server.behaviour.finish_reason)
                self.wfile.write(b"data: [DONE]\r\n\r\n")
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def dead_url(path: str = "/v1") -> str:
    """A loopback URL where nothing listens: an LLM server's by default, ``dead_url("")`` a ComfyUI's."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
