"""A fake ComfyUI for tests: a real HTTP + websocket server on 127.0.0.1 that replays the
message shapes and order recorded from ComfyUI 0.3.64, kept in tests/comfyui_traces/
(PROTOCOL.md there explains each trace).

It validates like ComfyUI (400 with node_errors, 500 for garbage), queues prompts and
runs them one at a time, caches unchanged nodes, sends progress with JPEG previews
(binary type 1, or type 4 with metadata after the feature flag), saves PNGs made with
Pillow for /view, and honours /interrupt and queue deletion. Knobs make it slow, break
a checkpoint, or drop websockets mid-run.

To try the page without ComfyUI, start it on its own (Ctrl+C stops it):

    .venv/bin/python -m tests.support.fake_comfy [--port 8188] [--step-s 0.25]
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request
from flask_sock import Sock
from PIL import Image
from werkzeug.serving import make_server

from .data import ROOT
from .fake_comfy_graph import OUTPUT_CLASSES, order, signatures, validate
from .fake_comfy_inputs import BadPicture, InputFolder
from .fake_comfy_models import ModelFolders
from .fake_comfy_replay import Replay, jpeg

# What a real ComfyUI 0.3.64 describes for the nodes we ask about (samplers, loaders...).
OBJECT_INFO = json.loads((ROOT / "tests" / "comfyui_traces" / "object_info_excerpt.json").read_text())

@dataclass
class Knobs:
    checkpoints: list[str] = field(default_factory=lambda: ["tiny-sd15-random.safetensors", "broken.safetensors"])
    step_delay_s: float = 0.02
    node_delay_s: float = 0.005
    previews: bool = True
    drop_sockets_at_step: int | None = None  # close every socket once, at this sampler step
    refuse_sockets_after_drop: bool = False  # and then refuse new websockets: HTTP only from then on
    start_delay_s: float = 0.0  # before a queued prompt starts running
    pickup_delay_s: float = 0.0  # before the worker takes a new prompt off the queue (nothing running)
    replay: str | None = None  # path of a real trace: send its websocket messages verbatim instead of running
    replay_speed: float = 10.0  # the trace's clock runs this much faster
    hang_at_step: int | None = None  # a stuck node: at this step, send nothing more until interrupted
    device_type: str = "cpu"  # what /system_stats reports (cuda for a GPU)
    openai_models: list[str] | None = None  # also answer GET /v1/models, as a ComfyUI with an LLM custom node may
    upload_status: int | None = None  # answer POST /upload/image with this status and no JSON (a refusal)
    missing_classes: tuple = ()  # node classes this ComfyUI lacks (e.g. LoadImage): unknown to it
    diffusion_models: list[str] = field(default_factory=list)  # the other model folders (fake_comfy_models.py)
    loras: list[str] = field(default_factory=list)
    text_encoders: list[str] = field(default_factory=list)
    vae: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)  # "folder/name" -> the file's __metadata__ (/view_metadata)
    unloadable: tuple = ()  # model files that fail to load when their loader runs (placeholder files)


def now_ms() -> int:
    return int(time.time() * 1000)


class FakeComfyUI(InputFolder, ModelFolders, Replay):
    def __init__(self, knobs: Knobs | None = None, port: int = 0):
        """``port``: 0 for a free one; an earlier server's port to play that ComfyUI restarted (empty history)."""
        self.knobs = knobs or Knobs()
        self.lock = threading.Condition()
        self.pending: list[list] = []  # [number, prompt_id, graph, extra_data, outputs]
        self.running: list | None = None
        self.history: dict[str, dict] = {}
        self.files: dict[tuple[str, str], bytes] = {}
        self.inputs: dict[tuple[str, str], bytes] = {}  # (type, "subfolder/name") -> bytes, from /upload/image
        self.uploads: list[dict] = []  # what each upload answered
        self.sockets: dict[str, tuple] = {}  # client_id -> (ws, lock, flags)
        self.number = 0
        self.counter = 0
        self.interrupt_ids: set[str] = set()
        self.previous_signatures: set[str] = set()
        self.history_outputs: dict[str, dict] = {}  # node signature -> its last output, for cached runs
        self.posted: list[dict] = []  # bodies of POST /prompt
        self.metadata_asked: list[tuple[str, str]] = []  # (folder, name) of each GET /view_metadata
        self.interrupts: list[dict] = []
        self.deletes: list[list] = []
        self.timeline: dict[str, dict] = {}  # prompt_id -> received / finished wall-clock times, for benchmarks
        self.progress_sent: list[tuple[str, int, float]] = []  # (prompt_id, step, wall-clock time sent)
        self.dropped = False
        self.stopping = False
        self.app = self._make_app()
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self._worker, daemon=True)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
        for client_id in list(self.sockets):
            self._close_socket(client_id)
        self.server.shutdown()
        self.server.server_close()

    # --- messages ---------------------------------------------------------------

    def _send(self, client_id, message) -> None:
        entry = self.sockets.get(client_id)
        if not entry:
            return  # like ComfyUI: events for a client with no socket are lost
        ws, lock, _ = entry
        try:
            with lock:
                ws.send(message if isinstance(message, bytes) else json.dumps(message))
        except Exception:
            self.sockets.pop(client_id, None)

    def _broadcast_status(self) -> None:
        remaining = len(self.pending) + (1 if self.running else 0)
        for client_id in list(self.sockets):
            self._send(client_id, {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}}})

    def _close_socket(self, client_id) -> None:
        entry = self.sockets.pop(client_id, None)
        if entry:
            try:
                entry[0].close()
            except Exception:
                pass

    # --- HTTP -------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask("fake_comfyui")
        sock = Sock(app)
        fake = self

        @app.post("/prompt")
        def post_prompt():
            body = request.get_json(silent=True) or {}
            fake.posted.append(body)
            graph = body.get("prompt")
            if not isinstance(graph, dict):
                return Response("500 Internal Server Error\n\nServer got itself in trouble", status=500, mimetype="text/plain")
            error = validate(graph, fake.knobs, lambda node: fake.picture_errors(node) + fake.model_errors(node))
            if error:
                return jsonify(error), 400
            prompt_id = body.get("prompt_id") or str(uuid.uuid4())
            fake.timeline[prompt_id] = {"received": time.time()}
            if fake.knobs.replay:
                threading.Thread(target=fake._replay, args=(body.get("client_id"), prompt_id), daemon=True).start()
                return jsonify({"prompt_id": prompt_id, "number": 0, "node_errors": {}})
            with fake.lock:
                number = fake.number
                fake.number += 1
                outputs = [n for n, node in graph.items() if node["class_type"] in OUTPUT_CLASSES]
                fake.pending.append([number, prompt_id, graph, {"client_id": body.get("client_id")}, outputs])
                fake.lock.notify_all()
            fake._broadcast_status()
            return jsonify({"prompt_id": prompt_id, "number": number, "node_errors": {}})

        @app.get("/queue")
        def get_queue():
            with fake.lock:
                return jsonify({"queue_running": [fake.running] if fake.running else [], "queue_pending": list(fake.pending)})

        @app.post("/queue")
        def post_queue():
            body = request.get_json(silent=True) or {}
            with fake.lock:
                if body.get("clear"):
                    fake.pending.clear()
                for prompt_id in body.get("delete", []):
                    fake.deletes.append(prompt_id)
                    fake.pending = [item for item in fake.pending if item[1] != prompt_id]
            fake._broadcast_status()
            return Response(status=200)

        @app.post("/interrupt")
        def post_interrupt():
            body = request.get_json(silent=True) or {}
            fake.interrupts.append(body)
            with fake.lock:
                if fake.running and body.get("prompt_id") in (None, fake.running[1]):
                    fake.interrupt_ids.add(fake.running[1])
            return Response(status=200)

        @app.get("/history/<prompt_id>")
        def get_history(prompt_id):
            entry = fake.history.get(prompt_id)
            return jsonify({prompt_id: entry} if entry else {})

        @app.get("/view")
        def view():
            key = (request.args.get("filename", ""), request.args.get("type", "output"))
            if key not in fake.files:
                return Response(status=404)
            return Response(fake.files[key], mimetype="image/png")

        app.post("/upload/image")(fake.upload_image)
        fake.model_routes(app)

        @app.get("/models/checkpoints")
        def checkpoints():
            return jsonify(fake.knobs.checkpoints)

        @app.get("/object_info/<node_class>")
        def object_info(node_class):
            # A real ComfyUI answers {} for a class it does not know (recorded excerpt in the traces).
            if node_class in ("LoadImage", "VAEEncode"):
                return jsonify(fake.picture_object_info(node_class))
            if node_class in fake.knobs.missing_classes:
                return jsonify({})
            if node_class == "CheckpointLoaderSimple":
                return jsonify({node_class: {"input": {"required": {"ckpt_name": [fake.knobs.checkpoints, {}]}}}})
            if fake.loader_info(node_class) is not None:
                return jsonify(fake.loader_info(node_class))
            return jsonify({node_class: OBJECT_INFO[node_class]} if node_class in OBJECT_INFO else {})

        @app.get("/v1/models")
        def openai_models():
            if fake.knobs.openai_models is None:
                return Response(status=404)
            return jsonify({"object": "list", "data": [{"id": m, "object": "model"} for m in fake.knobs.openai_models]})

        @app.get("/system_stats")
        def system_stats():
            # As a real ComfyUI started with (or without) --preview-method says in its argv.
            argv = ["main.py", "--listen", "127.0.0.1", "--port", str(fake.server.server_port),
                    *(["--preview-method", "auto"] if fake.knobs.previews else [])]
            return jsonify({"system": {"comfyui_version": "0.3.64", "os": "posix", "argv": argv},
                            "devices": [{"name": fake.knobs.device_type, "type": fake.knobs.device_type}]})

        @sock.route("/ws")
        def ws_route(ws):
            if fake.dropped and fake.knobs.refuse_sockets_after_drop:
                return  # the handshake completes, then the socket closes at once
            client_id = request.args.get("clientId") or uuid.uuid4().hex
            fake._close_socket(client_id)  # a second socket with the same id replaces the first
            lock, flags = threading.Lock(), {}
            fake.sockets[client_id] = (ws, lock, flags)
            remaining = len(fake.pending) + (1 if fake.running else 0)
            fake._send(client_id, {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": client_id}})
            while not fake.stopping:
                try:
                    message = ws.receive(timeout=1)
                except Exception:
                    break
                if message is None:
                    if fake.sockets.get(client_id, (None,))[0] is not ws:
                        break
                    continue
                try:
                    data = json.loads(message)
                except ValueError:
                    continue
                if data.get("type") == "feature_flags":
                    flags.update(data.get("data") or {})
                    fake._send(client_id, {"type": "feature_flags", "data": {"supports_preview_metadata": True, "max_upload_size": 104857600}})

        return app

    # --- execution ----------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            with self.lock:
                while not self.pending and not self.stopping:
                    self.lock.wait(0.5)
                if self.stopping:
                    return
                if self.knobs.pickup_delay_s:  # the worker is slow to take a new prompt: it stays pending
                    self.lock.wait(self.knobs.pickup_delay_s)
                    if not self.pending:
                        continue
                self.pending.sort(key=lambda item: item[0])
                item = self.pending.pop(0)
                self.running = item
            if self.knobs.start_delay_s:
                time.sleep(self.knobs.start_delay_s)
            try:
                self._execute(item)
            finally:
                with self.lock:
                    self.running = None
                self._broadcast_status()

    def _execute(self, item) -> None:
        number, prompt_id, graph, extra, outputs = item
        client = extra.get("client_id")
        messages = [["execution_start", {"prompt_id": prompt_id, "timestamp": now_ms()}]]
        self._send(client, {"type": "execution_start", "data": messages[0][1]})
        signed = signatures(graph)
        ordered = order(graph)
        cached = [n for n in ordered if signed[n] in self.previous_signatures and graph[n]["class_type"] not in OUTPUT_CLASSES]
        if all(signed[n] in self.previous_signatures for n in ordered):
            cached = list(ordered)
        messages.append(["execution_cached", {"nodes": cached, "prompt_id": prompt_id, "timestamp": now_ms()}])
        self._send(client, {"type": "execution_cached", "data": messages[-1][1]})
        results: dict[str, dict] = {}
        seed = 0
        for node_id in ordered:
            node = graph[node_id]
            ctype = node["class_type"]
            if "seed" in node["inputs"] or "noise_seed" in node["inputs"]:
                seed = int(node["inputs"].get("seed", node["inputs"].get("noise_seed", 0)))
            if node_id in cached and ctype not in OUTPUT_CLASSES:
                continue
            if node_id in cached:  # an output from cache is still reported as executed
                results[node_id] = self.history_outputs.get(signed[node_id], {"images": []})
                self._send(client, {"type": "executed", "data": {"node": node_id, "display_node": node_id, "output": results[node_id], "prompt_id": prompt_id}})
                continue
            self._send(client, {"type": "executing", "data": {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}})
            time.sleep(self.knobs.node_delay_s)
            if ctype == "CheckpointLoaderSimple" and node["inputs"].get("ckpt_name") == "broken.safetensors":
                data = {"prompt_id": prompt_id, "node_id": node_id, "node_type": ctype, "executed": [],
                        "exception_message": "Error while deserializing header: header too large\n",
                        "exception_type": "safetensors._safetensors_rust.SafetensorError",
                        "traceback": ["  File \"ComfyUI/execution.py\", line 496, in execute\n"],
                        "current_inputs": {}, "current_outputs": {}, "timestamp": now_ms()}
                return self._finish(item, "error", ["execution_error", data], messages, results)
            if self.load_error(node):
                data = {"prompt_id": prompt_id, "node_id": node_id, "node_type": ctype, "executed": [],
                        **self.load_error(node), "traceback": ["  File \"ComfyUI/execution.py\", line 496, in execute\n"],
                        "current_inputs": {}, "current_outputs": {}, "timestamp": now_ms()}
                return self._finish(item, "error", ["execution_error", data], messages, results)
            if ctype == "LoadImage":
                try:
                    self.load_picture(node)
                except BadPicture as exc:
                    data = {"prompt_id": prompt_id, "node_id": node_id, "node_type": ctype, "executed": [],
                            "exception_message": str(exc), "exception_type": "PIL.UnidentifiedImageError",
                            "traceback": [], "current_inputs": {"image": [node["inputs"]["image"]]},
                            "current_outputs": [], "timestamp": now_ms()}
                    return self._finish(item, "error", ["execution_error", data], messages, results)
            steps = node["inputs"].get("steps") if ctype in ("KSampler", "KSamplerAdvanced", "BasicScheduler") else None
            for step in range(1, (steps or 0) + 1):
                time.sleep(self.knobs.step_delay_s)
                while step == self.knobs.hang_at_step and prompt_id not in self.interrupt_ids and not self.stopping:
                    time.sleep(0.05)
                if prompt_id in self.interrupt_ids:
                    data = {"prompt_id": prompt_id, "node_id": node_id, "node_type": ctype, "executed": [], "timestamp": now_ms()}
                    return self._finish(item, "interrupted", ["execution_interrupted", data], messages, results)
                self._send(client, {"type": "progress", "data": {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id}})
                self.progress_sent.append((prompt_id, step, time.time()))
                if self.knobs.previews:
                    self._send_preview(client, prompt_id, node_id, step)
                if self.knobs.drop_sockets_at_step == step and not self.dropped:
                    self.dropped = True
                    for cid in list(self.sockets):
                        self._close_socket(cid)
            if ctype in OUTPUT_CLASSES:
                results[node_id] = {"images": [self._save_png(graph, node, seed)]}
                self._send(client, {"type": "executed", "data": {"node": node_id, "display_node": node_id, "output": results[node_id], "prompt_id": prompt_id}})
        self.previous_signatures = set(signed.values())
        for node_id, output in results.items():
            self.history_outputs[signed[node_id]] = output
        self._finish(item, "success", ["execution_success", {"prompt_id": prompt_id, "timestamp": now_ms()}], messages, results)

    def _finish(self, item, status_str, last_message, messages, results) -> None:
        number, prompt_id, graph, extra, outputs = item
        client = extra.get("client_id")
        self.interrupt_ids.discard(prompt_id)
        messages.append(last_message)
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, graph, extra, outputs],
            "outputs": results if status_str == "success" else {},
            "status": {"status_str": "success" if status_str == "success" else "error",
                       "completed": status_str == "success", "messages": messages},
            "meta": {},
        }
        self._send(client, {"type": last_message[0], "data": last_message[1]})
        with self.lock:
            self.running = None
        self._broadcast_status()
        self._send(client, {"type": "executing", "data": {"node": None, "prompt_id": prompt_id}})
        self.timeline.setdefault(prompt_id, {})["finished"] = time.time()

    def _send_preview(self, client, prompt_id, node_id, step) -> None:
        image = jpeg((step * 30 % 256, 80, 160))
        entry = self.sockets.get(client)
        if entry and entry[2].get("supports_preview_metadata"):
            meta = json.dumps({"node_id": node_id, "prompt_id": prompt_id, "display_node_id": node_id,
                               "parent_node_id": None, "real_node_id": node_id, "image_type": "image/jpeg"}).encode()
            self._send(client, struct.pack(">II", 4, len(meta)) + meta + image)
        else:
            self._send(client, struct.pack(">II", 1, 1) + image)

    def _save_png(self, graph, node, seed) -> dict:
        width = height = 64
        for other in graph.values():
            if "width" in other["inputs"] and "height" in other["inputs"]:
                width, height = int(other["inputs"]["width"]), int(other["inputs"]["height"])
        self.counter += 1
        prefix = node["inputs"].get("filename_prefix", "ComfyUI")
        kind = "output" if node["class_type"] == "SaveImage" else "temp"
        filename = f"{prefix}_{self.counter:05d}_.png"
        colour = (seed % 256, (seed // 256) % 256, 128)
        buf = io.BytesIO()
        (self.changed_picture(graph, colour) or Image.new("RGB", (width, height), colour)).save(buf, "PNG")
        self.files[(filename, kind)] = buf.getvalue()
        return {"filename": filename, "subfolder": "", "type": kind}


def main(argv: list[str] | None = None) -> int:
    """Serve on a fixed loopback port, slowly enough that a person sees the steps and previews."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_comfy",
                                     description="A fake ComfyUI on 127.0.0.1, to try the page without ComfyUI.")
    parser.add_argument("--port", type=int, default=8188, help="default 8188, ComfyUI's own")
    parser.add_argument("--step-s", type=float, default=0.25, help="seconds per sampler step (default 0.25)")
    args = parser.parse_args(argv)
    # A taken port ends here with werkzeug's own "Port ... is in use" and status 1.
    with FakeComfyUI(Knobs(step_delay_s=args.step_s, node_delay_s=0.05), port=args.port) as fake:
        print(f"fake ComfyUI at {fake.url} (it draws plain colours); Ctrl+C stops it", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
