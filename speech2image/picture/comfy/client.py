"""One ComfyUI server: submit a graph, follow it over the websocket, fetch the images.

The websocket is opened before ``POST /prompt`` with our own ``prompt_id`` (events can
beat the HTTP answer), and every prompt ends with ``executing`` carrying ``node: null``
(``protocol.py`` has the message shapes). If the websocket drops, the client reconnects
or falls back to polling ``/history``; no call waits forever.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import AbstractSet, Callable
from urllib.parse import urlencode, urlparse

import requests
import websocket

from .protocol import (
    PREVIEW_HINT,
    START_HINT,
    ComfyError,
    ComfyUnavailable,
    PromptLost,
    RenderCancelled,
    RenderedImage,
    describe_validation_error,
)
from .run import ProgressTracker, PromptRun

log = logging.getLogger(__name__)

# Our prompts' client ids start with this (then the instance's id): ComfyUI's queue shows whose they are.
CLIENT_PREFIX = "s2i-"

# Pictures we upload to change them go into this subfolder of ComfyUI's input folder.
PICTURE_SUBFOLDER = "speech2image"

# Settings whose choices are a node input's list in ComfyUI's /object_info.
CHOICE_INPUTS = {"samplers": ("KSampler", "sampler_name"), "schedulers": ("KSampler", "scheduler")}


@dataclass
class RenderResult:
    prompt_id: str
    images: list[RenderedImage]
    cached: bool
    previews: int
    elapsed_s: float
    server: str
    notes: list[str] = field(default_factory=list)


class ComfyClient:
    CHOICE_SOURCES = ("checkpoints", *CHOICE_INPUTS)  # what choices() can answer

    def __init__(self, base_url: str, http_timeout_s: float = 10.0, stall_s: float = 300.0,
                 stall_poll_s: float = 5.0, watch_s: float = 2.0, client_prefix: str = CLIENT_PREFIX):
        self.base_url = base_url.rstrip("/")
        self.client_prefix = client_prefix  # our client ids start with it (see ours_in_queue)
        self.http_timeout_s = http_timeout_s
        self.stall_s = stall_s  # a running prompt silent this long is stuck; a queued one may wait forever
        self.stall_poll_s = stall_poll_s  # silence on the socket this long: ask /history and /queue
        self.watch_s = watch_s  # how often /queue is asked whether ComfyUI still has our prompt

    # --- plain HTTP -----------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return requests.request(method, self.base_url + path, timeout=kwargs.pop("timeout", self.http_timeout_s), **kwargs)
        except requests.ConnectionError as exc:
            raise ComfyUnavailable(f"ComfyUI is not reachable at {self.base_url}. {START_HINT}") from exc
        except requests.Timeout as exc:
            raise ComfyUnavailable(f"ComfyUI at {self.base_url} did not answer within {self.http_timeout_s:g} s") from exc

    def _json(self, method: str, path: str, **kwargs):
        response = self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise ComfyError(f"ComfyUI answered HTTP {response.status_code} to {method} {path}")
        try:
            return response.json()
        except ValueError as exc:
            raise ComfyError(f"ComfyUI sent something that is not JSON for {path}") from exc

    def system_stats(self) -> dict:
        return self._json("GET", "/system_stats", timeout=min(self.http_timeout_s, 3.0))

    def checkpoints(self) -> list[str]:
        try:
            names = self._json("GET", "/models/checkpoints")
            if isinstance(names, list):
                return [n for n in names if isinstance(n, str)]
        except ComfyUnavailable:
            raise
        except ComfyError:
            pass  # older ComfyUI: ask the loader node instead
        return self.input_choices("CheckpointLoaderSimple", "ckpt_name")

    def input_choices(self, node_class: str, input_name: str) -> list[str]:
        """The values a node's list input accepts, from /object_info (e.g. KSampler's samplers)."""
        inputs = self.node_inputs(node_class)
        if input_name not in inputs:
            raise ComfyError(f"ComfyUI does not describe {node_class}.{input_name}")
        return inputs[input_name]

    def node_inputs(self, node_class: str) -> dict[str, list[str]]:
        """A node's list inputs and what each accepts (loaders: the files of their folders), from
        /object_info; {} for a node this ComfyUI does not know. Both of ComfyUI's forms are read: a
        list of values, and ``["COMBO", {"options": [...]}]``."""
        info = self._json("GET", f"/object_info/{node_class}")
        described = info.get(node_class) if isinstance(info, dict) else None
        inputs = (described or {}).get("input") if isinstance(described, dict) else None
        found = {}
        for group in ("required", "optional"):
            for name, spec in ((inputs or {}).get(group) or {}).items():
                values = spec[0] if isinstance(spec, list) and spec else None
                if values == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
                    values = spec[1].get("options")
                if isinstance(values, list):
                    found[name] = [v for v in values if isinstance(v, str)]
        return found

    def model_folders(self) -> list[str]:
        """The model folders ComfyUI knows (GET /models): checkpoints, diffusion_models, loras..."""
        names = self._json("GET", "/models")
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def model_files(self, folder: str) -> list[str]:
        """The files of one model folder (GET /models/{folder}); [] for a folder it does not have."""
        response = self._request("GET", f"/models/{folder}")
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise ComfyError(f"ComfyUI answered HTTP {response.status_code} to GET /models/{folder}")
        try:
            names = response.json()
        except ValueError as exc:
            raise ComfyError(f"ComfyUI sent something that is not JSON for /models/{folder}") from exc
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def file_metadata(self, folder: str, filename: str, timeout_s: float = 2.0) -> dict:
        """A safetensors file's ``__metadata__`` through stock ComfyUI (GET /view_metadata/{folder});
        {} when it has none (ComfyUI answers 404) or it is not a safetensors file."""
        if not filename.endswith(".safetensors"):
            return {}
        response = self._request("GET", f"/view_metadata/{folder}?" + urlencode({"filename": filename}),
                                 timeout=min(timeout_s, self.http_timeout_s))
        if response.status_code != 200:
            return {}
        try:
            metadata = response.json()
        except ValueError:
            return {}
        return metadata if isinstance(metadata, dict) else {}

    def missing_nodes(self, classes) -> list[str]:
        """The node classes this ComfyUI does not know (its /object_info answers {} for those)."""
        return [name for name in sorted(set(classes)) if not self._json("GET", f"/object_info/{name}")]

    def choices(self, source: str) -> list[str]:
        """What ComfyUI offers for a setting whose choices come from it (see config.Knob)."""
        if source == "checkpoints":
            return self.checkpoints()
        node_class, input_name = CHOICE_INPUTS[source]
        return self.input_choices(node_class, input_name)

    def queue(self) -> dict:
        return self._json("GET", "/queue")

    def queue_position(self, prompt_id: str) -> int | None:
        """0 while running, n when n-1 prompts are ahead, None when not in the queue."""
        queue = self.queue()
        if any(item[1] == prompt_id for item in queue.get("queue_running", [])):
            return 0
        pending = sorted(queue.get("queue_pending", []), key=lambda item: item[0])
        for index, item in enumerate(pending):
            if item[1] == prompt_id:
                return len(queue.get("queue_running", [])) + index + 1
        return None

    def ours_in_queue(self) -> list[str]:
        """Prompt ids queued or running whose client id carries our prefix."""
        queue = self.queue()
        items = [*queue.get("queue_running", []), *queue.get("queue_pending", [])]
        return [item[1] for item in items if len(item) > 3 and isinstance(item[3], dict)
                and str(item[3].get("client_id") or "").startswith(self.client_prefix)]

    def history(self, prompt_id: str) -> dict | None:
        data = self._json("GET", f"/history/{prompt_id}")
        return data.get(prompt_id) if isinstance(data, dict) else None

    def view(self, filename: str, subfolder: str = "", kind: str = "output") -> bytes:
        response = self._request("GET", "/view?" + urlencode({"filename": filename, "subfolder": subfolder, "type": kind}),
                                 timeout=max(self.http_timeout_s, 30.0))
        if response.status_code != 200:
            raise ComfyError(f"ComfyUI could not send the image {filename} (HTTP {response.status_code})")
        return response.content

    def upload_image(self, data: bytes, name: str, subfolder: str = PICTURE_SUBFOLDER) -> str:
        """Put a picture into ComfyUI's input folder for LoadImage; answers the name LoadImage takes
        ("subfolder/name"). Never overwrites: ComfyUI keeps a file with the same name and bytes as it
        is, and saves other bytes as "name (1).png" (tests/comfyui_traces/upload_image.json)."""
        response = self._request("POST", "/upload/image", files={"image": (name, data, "image/png")},
                                 data={"type": "input", "subfolder": subfolder}, timeout=max(self.http_timeout_s, 30.0))
        if response.status_code in (404, 405):
            raise ComfyError(f"ComfyUI at {self.base_url} has no /upload/image, so the picture to change cannot be "
                             "sent to it; update ComfyUI", code="comfyui_upload_refused")
        try:
            answer = response.json() if response.status_code == 200 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            detail = response.text[:200].strip() or response.reason
            raise ComfyError(f"ComfyUI at {self.base_url} refused the upload of the picture to change "
                             f"(HTTP {response.status_code}{': ' + detail if detail else ''})",
                             code="comfyui_upload_refused")
        folder = answer.get("subfolder") or ""
        return f"{folder}/{answer['name']}" if folder else answer["name"]

    def submit(self, graph: dict, client_id: str, prompt_id: str) -> dict:
        response = self._request("POST", "/prompt", json={"prompt": graph, "client_id": client_id, "prompt_id": prompt_id})
        if response.status_code == 400:
            try:
                raise ComfyError(describe_validation_error(response.json()), code="comfyui_rejected")
            except ValueError:
                pass
        if response.status_code != 200:
            raise ComfyError(f"ComfyUI answered HTTP {response.status_code} to the workflow: "
                             f"{response.text[:200].strip()}", code="comfyui_rejected")
        return response.json()

    def cancel(self, prompt_id: str, wait_s: float = 0.0) -> str:
        """Remove a pending prompt, or interrupt it when it runs: 'deleted', 'interrupted' or 'gone'.

        With ``wait_s``, wait up to that long for an interrupted prompt to leave the queue
        (an interrupt takes effect at the sampler's next step)."""
        position = self.queue_position(prompt_id)
        if position is None:
            return "gone"
        if position > 0:
            self._request("POST", "/queue", json={"delete": [prompt_id]})
            if self.queue_position(prompt_id) is None:
                return "deleted"
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id})
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self.queue_position(prompt_id) is not None:
            time.sleep(0.1)
        return "interrupted"

    # --- the websocket --------------------------------------------------------

    def _ws_url(self, client_id: str) -> str:
        parsed = urlparse(self.base_url)
        scheme = "wss" if parsed.scheme == "https" else "ws"
        return f"{scheme}://{parsed.netloc}{parsed.path}/ws?clientId={client_id}"

    def _connect(self, client_id: str):
        try:
            ws = websocket.create_connection(self._ws_url(client_id), timeout=self.http_timeout_s)
        except (OSError, websocket.WebSocketException) as exc:
            raise ComfyUnavailable(f"ComfyUI is not reachable at {self.base_url} ({exc}). {START_HINT}") from exc
        # ComfyUI greets a socket with 'status' once it is registered for our client id;
        # waiting for that keeps the first events of our prompt from going nowhere.
        ws.settimeout(0.2)
        greeted_by = time.monotonic() + 3.0
        while time.monotonic() < greeted_by:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError) as exc:
                raise ComfyUnavailable(f"ComfyUI closed the websocket at {self.base_url} ({exc}). {START_HINT}") from exc
            if opcode == websocket.ABNF.OPCODE_TEXT and b'"status"' in (data if isinstance(data, bytes) else data.encode()):
                break
        # Ask for previews with metadata (binary type 4) so each one names its prompt.
        ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        ws.settimeout(0.5)
        return ws

    def render(
        self,
        graph: dict,
        on_event: Callable[[dict], None],
        on_submit: Callable[[dict], None] | None = None,
        cancel: threading.Event | None = None,
        heavy_nodes: AbstractSet[str] = frozenset(),
        output_nodes: set[str] | None = None,
        submitted: dict | None = None,
    ) -> RenderResult:
        """Run one graph to the end; raises ComfyError, ComfyUnavailable or RenderCancelled.

        Before ``POST /prompt`` goes out, ``on_submit`` gets the server, client id, prompt id and
        graph, so a caller can record them first (write-ahead) and find the prompt again after a
        restart. With ``submitted`` (that client id and prompt id) nothing is posted:
        the prompt a previous run of this app submitted is followed if it is still queued or running
        (a socket with the same client id gets its events), or collected if it finished; PromptLost
        when ComfyUI has no trace of it."""
        cancel = cancel or threading.Event()
        started = time.monotonic()
        if submitted:
            client_id, prompt_id = submitted["client_id"], submitted["prompt_id"]
        else:
            client_id, prompt_id = self.client_prefix + uuid.uuid4().hex, str(uuid.uuid4())
        ws = self._connect(client_id)
        run = PromptRun(self, prompt_id, ProgressTracker(graph, heavy_nodes), on_event)
        try:
            if not submitted:
                if on_submit is not None:
                    on_submit({"server": self.base_url, "client_id": client_id, "prompt_id": prompt_id,
                               "graph": graph})
                self.submit(graph, client_id, prompt_id)
            elif self.queue_position(prompt_id) is None:
                run.settle_from_history()  # asked after the queue: it cannot slip between the two
                if run.outcome is None:
                    raise PromptLost(f"ComfyUI at {self.base_url} no longer has this job's render "
                                     "(it restarted or its queue was cleared)")
        except BaseException:
            ws.close()
            raise
        return self._follow(ws, run, client_id, cancel, output_nodes, started)

    def _follow(self, ws, run: PromptRun, client_id: str, cancel: threading.Event, output_nodes: set[str] | None,
                started: float) -> RenderResult:
        prompt_id = run.prompt_id
        try:
            if run.outcome is None:
                run.refresh_queue()
            while run.outcome is None:
                if cancel.is_set():
                    run.request_cancel()
                # Only a running prompt can stall: time spent waiting in a busy queue does not count.
                # Without the websocket there is no progress to see, so no stall either.
                if run.started and ws is not None and time.monotonic() - run.last_message > self.stall_s:
                    self._safe_cancel(prompt_id)
                    raise ComfyError(f"ComfyUI sent nothing for {self.stall_s:g} s while rendering this job, so it "
                                     "was stopped there. Check ComfyUI's console; SPEECH2IMAGE_RENDER_STALL_S "
                                     "sets how long to wait.", code="comfyui_stalled")
                run.watch()
                if run.outcome is not None:
                    break
                if ws is None:
                    run.poll()
                    time.sleep(0.5)
                    continue
                try:
                    opcode, data = ws.recv_data()
                except websocket.WebSocketTimeoutException:
                    run.idle()
                    continue
                except (websocket.WebSocketException, OSError) as exc:
                    log.warning("ComfyUI websocket dropped (%s); reconnecting", exc)
                    ws = self._reconnect(client_id)
                    run.poll()
                    continue
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    run.handle_text(data)
                elif opcode == websocket.ABNF.OPCODE_BINARY:
                    run.handle_binary(data)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    ws = self._reconnect(client_id)
                    run.poll()
        except ComfyUnavailable as exc:
            exc.after_submit = True  # ComfyUI had our prompt: it went away mid-job
            raise
        finally:
            if ws is not None:
                try:
                    ws.close()
                except Exception:
                    pass
        if run.outcome == "cancelled":
            raise RenderCancelled("cancelled")
        if run.outcome == "interrupted":
            raise ComfyError("The render was interrupted in ComfyUI itself (its own Cancel, or another tool), "
                             "not from this page.", code="comfyui_interrupted")
        if run.outcome == "dropped":
            raise ComfyError("ComfyUI dropped this job: its queue was cleared or it restarted.",
                             code="comfyui_dropped")
        if run.outcome == "error":
            raise ComfyError(run.error_message, code="comfyui_execution_error")
        images = self._collect_images(prompt_id, run, output_nodes)
        notes = [] if run.previews or run.cached_all else [PREVIEW_HINT]
        run.on_event({"type": "progress", "percent": run.tracker.finish()})
        return RenderResult(prompt_id=prompt_id, images=images, cached=run.cached_all, previews=run.previews,
                            elapsed_s=time.monotonic() - started, server=self.base_url, notes=notes)

    def _reconnect(self, client_id: str, attempts: int = 3):
        for attempt in range(attempts):
            time.sleep(0.3 * (attempt + 1))
            try:
                return self._connect(client_id)
            except ComfyUnavailable:
                continue
        log.warning("ComfyUI websocket did not come back; polling /history instead")
        return None

    def _safe_cancel(self, prompt_id: str) -> None:
        try:
            self.cancel(prompt_id)
        except ComfyError:
            pass

    def _collect_images(self, prompt_id: str, run: PromptRun, output_nodes: set[str] | None) -> list[RenderedImage]:
        outputs = run.outputs
        try:
            entry = self.history(prompt_id)
            if entry and entry.get("outputs"):
                outputs = {node: out.get("images", []) for node, out in entry["outputs"].items()}
        except ComfyError as exc:
            if not outputs:
                raise
            log.info("history unavailable, using websocket outputs: %s", exc)
        wanted = [img for node, images in outputs.items() if output_nodes is None or node in output_nodes
                  for img in images]
        if not wanted:
            raise ComfyError("ComfyUI finished but produced no image; does the workflow end in a SaveImage node?",
                             code="comfyui_no_image")
        return [RenderedImage(self.view(i["filename"], i.get("subfolder", ""), i.get("type", "output")),
                              i["filename"], i.get("subfolder", ""), i.get("type", "output")) for i in wanted]
