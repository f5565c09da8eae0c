"""One submitted prompt as its messages arrive: progress, previews, the outcome.

``PromptRun`` reads ComfyUI's websocket messages (``protocol.py`` has their shapes) and, when
the socket is silent or gone, asks the server's /queue and /history through its client. It
decides the outcome: success, error, cancelled (by us), interrupted (in ComfyUI) or dropped.
"""
from __future__ import annotations

import json
import logging
import time
from typing import AbstractSet, Protocol

from .protocol import ComfyError, ComfyUnavailable, parse_binary_frame

log = logging.getLogger(__name__)


class ProgressTracker:
    """One overall percentage across nodes; the sampler counts for more, and it never goes back."""

    HEAVY = 8.0

    def __init__(self, graph: dict, heavy_nodes: AbstractSet[str] = frozenset()):
        self.weights = {node_id: (self.HEAVY if node_id in heavy_nodes else 1.0) for node_id in graph}
        self.total = sum(self.weights.values()) or 1.0
        self.done: set[str] = set()
        self.current: str | None = None
        self.fraction = 0.0
        self.percent = 0.0

    def _update(self) -> float:
        weight = sum(self.weights.get(n, 0) for n in self.done)
        if self.current and self.current not in self.done:
            weight += self.weights.get(self.current, 1.0) * self.fraction
        self.percent = max(self.percent, min(100.0, 100.0 * weight / self.total))
        return round(self.percent, 1)

    def cached(self, nodes) -> float:
        self.done.update(str(n) for n in nodes)
        return self._update()

    def executing(self, node: str) -> float:
        if self.current:
            self.done.add(self.current)
        self.current, self.fraction = node, 0.0
        return self._update()

    def step(self, node: str, value: float, maximum: float) -> float:
        if node != self.current:
            self.executing(node)
        self.fraction = max(0.0, min(1.0, value / maximum)) if maximum else 0.0
        return self._update()

    def finish(self) -> float:
        self.percent = 100.0
        return 100.0


class Server(Protocol):
    """What a run asks of the server that has its prompt (``client.ComfyClient`` is one)."""

    base_url: str
    watch_s: float
    stall_poll_s: float

    def queue_position(self, prompt_id: str) -> int | None: ...

    def history(self, prompt_id: str) -> dict | None: ...

    def cancel(self, prompt_id: str, wait_s: float = 0.0) -> str: ...


class PromptRun:
    """The state of one prompt as its messages arrive."""

    def __init__(self, client: Server, prompt_id: str, tracker: ProgressTracker, on_event):
        self.client = client
        self.prompt_id = prompt_id
        self.tracker = tracker
        self.on_event = on_event
        self.outcome: str | None = None  # success, error, cancelled (by us), interrupted (in ComfyUI), dropped
        self.error_message = ""
        self.started = False
        self.cached_all = False
        self.previews = 0
        self.outputs: dict[str, list] = {}
        self.cancel_state: str | None = None
        self.cancel_at = 0.0
        self.last_message = time.monotonic()  # anything on the socket: a running prompt that is silent is stuck
        self.last_poll = time.monotonic()
        self.last_queue_check = 0.0
        self.last_watch = time.monotonic()
        self.position: int | None = None

    def mine(self, data: dict) -> bool:
        # Late-connecting sockets get 'executing' without prompt_id (trace g); one socket
        # per prompt makes those ours too.
        return data.get("prompt_id") in (None, self.prompt_id)

    def refresh_queue(self) -> None:
        self.last_queue_check = time.monotonic()
        if self.started:
            return
        self.show_position(self.client.queue_position(self.prompt_id))

    def show_position(self, position: int | None) -> None:
        # Position 1 is "next, with nothing ahead": ComfyUI's worker just has not picked it up yet,
        # which is no queue a person needs to hear about.
        if position is not None and position > 1 and position != self.position and not self.started:
            self.position = position
            self.on_event({"type": "queued", "position": position})
        elif position == 0:
            self.mark_started()

    def watch(self) -> None:
        """Every few seconds, whatever the socket says: is the prompt still queued or running? A prompt
        that is in neither place nor in the history was dropped (queue cleared, ComfyUI restarted)."""
        now = time.monotonic()
        if now - self.last_watch < self.client.watch_s:
            return
        self.last_watch = now
        try:
            position = self.client.queue_position(self.prompt_id)
        except ComfyUnavailable:
            raise  # the server is gone: the pool decides what happens to the job
        except ComfyError as exc:
            log.info("could not ask ComfyUI's queue: %s", exc.message)
            return
        if position is not None:
            self.show_position(position)
            return
        self.settle_from_history()
        if self.outcome is None:
            log.warning("ComfyUI at %s no longer has prompt %s", self.client.base_url, self.prompt_id)
            self.outcome = "cancelled" if self.cancel_state else "dropped"

    def mark_started(self) -> None:
        if not self.started:
            self.started = True
            self.on_event({"type": "started"})

    def handle_text(self, raw: str) -> None:
        self.last_message = time.monotonic()
        try:
            message = json.loads(raw)
        except ValueError:
            return
        kind, data = message.get("type"), message.get("data") or {}
        if kind == "status":
            if not self.started and time.monotonic() - self.last_queue_check > 0.2:
                self.refresh_queue()
            return
        if not isinstance(data, dict) or not self.mine(data):
            return
        if kind == "execution_start":
            self.mark_started()
        elif kind == "execution_cached":
            nodes = [str(n) for n in data.get("nodes", [])]
            self.cached_all = bool(nodes) and set(nodes) >= set(self.tracker.weights)
            self.on_event({"type": "cached", "nodes": nodes, "percent": self.tracker.cached(nodes)})
        elif kind == "executing":
            node = data.get("node")
            if node is None:
                if data.get("prompt_id") == self.prompt_id and self.outcome is None:
                    self.settle_from_history()
                return
            self.mark_started()
            self.on_event({"type": "node", "node": str(node), "percent": self.tracker.executing(str(node))})
        elif kind == "progress":
            self.mark_started()
            node, value, maximum = str(data.get("node")), data.get("value", 0), data.get("max", 0)
            self.on_event({"type": "progress", "node": node, "value": value, "max": maximum,
                           "percent": self.tracker.step(node, value, maximum)})
        elif kind == "executed":
            images = (data.get("output") or {}).get("images") or []
            self.outputs[str(data.get("node"))] = images
        elif kind == "execution_success":
            self.outcome = "success"
        elif kind == "execution_interrupted":
            self.outcome = self.interrupted()
        elif kind == "execution_error":
            self.outcome = "error"
            exception = (data.get("exception_message") or "").strip()
            self.error_message = (f"ComfyUI failed in {data.get('node_type')} (node {data.get('node_id')}): "
                                  f"{exception or data.get('exception_type', 'unknown error')}")

    def handle_binary(self, data: bytes) -> None:
        self.last_message = time.monotonic()
        frame = parse_binary_frame(data)
        if not frame or frame["kind"] != "preview":
            return
        if frame["meta"].get("prompt_id") not in (None, self.prompt_id):
            return
        self.previews += 1
        self.on_event({"type": "preview", "mime": frame["mime"], "image": frame["image"]})

    def idle(self) -> None:
        """Nothing on the socket for a while: the queue position may have moved, or a message was lost."""
        now = time.monotonic()
        if self.cancel_state == "interrupted" and now - self.cancel_at > 10:
            self.outcome = "cancelled"  # ComfyUI never confirmed; stop waiting
            return
        if not self.started and now - self.last_queue_check > 1.0:
            self.refresh_queue()
        if now - max(self.last_message, self.last_poll) > self.client.stall_poll_s:
            self.last_poll = now
            self.poll()

    def poll(self) -> None:
        """Learn the outcome from /history (the websocket is gone or silent)."""
        self.settle_from_history()
        if self.outcome is None and not self.started:
            try:
                self.refresh_queue()
            except ComfyError:
                pass

    def settle_from_history(self) -> None:
        entry = self.client.history(self.prompt_id)
        if not entry:
            return
        status = entry.get("status") or {}
        messages = status.get("messages") or []
        for name, data in messages:
            if name == "execution_error":
                self.handle_text(json.dumps({"type": "execution_error", "data": data}))
                return
            if name == "execution_interrupted":
                self.outcome = self.interrupted()
                return
        if status.get("status_str") == "success" or status.get("completed"):
            self.outcome = "success"
            self.outputs = {n: o.get("images", []) for n, o in (entry.get("outputs") or {}).items()}
        elif status.get("status_str") == "error":
            self.outcome = "error"
            self.error_message = self.error_message or "ComfyUI reported an error running the workflow"

    def interrupted(self) -> str:
        """Interrupted by our own cancel, or by someone else in ComfyUI."""
        return "cancelled" if self.cancel_state is not None else "interrupted"

    def request_cancel(self) -> None:
        if self.cancel_state is not None:
            return
        self.cancel_state = self.client.cancel(self.prompt_id)
        self.cancel_at = time.monotonic()
        log.info("cancel %s: %s", self.prompt_id, self.cancel_state)
        if self.cancel_state == "gone":
            self.settle_from_history()  # it may have just finished: keep that result
        if self.cancel_state in ("deleted", "gone") and self.outcome is None:
            self.outcome = "cancelled"
