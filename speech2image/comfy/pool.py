"""Several ComfyUI servers as one: server choice, checkpoint choice and failover.

The pool lives as long as its URL list: the pipeline keeps one and replaces it only when
the list changes, so every job sees the others' load.
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ..workflows import RenderParams, Workflow, fill
from .client import CLIENT_PREFIX, ComfyClient
from .protocol import START_HINT, ComfyError, ComfyUnavailable, PromptLost

PREVIEW_INTERVAL_S = 0.15

log = logging.getLogger(__name__)


def parse_urls(value: str) -> list[str]:
    """SPEECH2IMAGE_COMFYUI_URL may list several servers, comma-separated (one per GPU or machine)."""
    urls = [u.strip().rstrip("/") for u in (value or "").split(",") if u.strip()]
    return urls or ["http://127.0.0.1:8188"]


class ServerLoad:
    """Jobs we sent to each server and that are not finished yet.

    A server's /queue does not show a job we are still submitting, so jobs chosen at the same
    moment would all pick the same idle server; counting our own in-flight jobs spreads them.
    One instance lives as long as the pipeline, so every job sees the others.
    """

    def __init__(self):
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def claim_least_busy(self, queue_lengths: dict[str, int]) -> str:
        """Pick the server with the least work and count our job on it, in one step."""
        with self._lock:
            url = min(queue_lengths, key=lambda u: max(queue_lengths[u], self._in_flight.get(u, 0)))
            self._in_flight[url] = self._in_flight.get(url, 0) + 1
            return url

    def release(self, url: str) -> None:
        with self._lock:
            self._in_flight[url] = max(0, self._in_flight.get(url, 0) - 1)


@dataclass
class Rendered:
    """A finished render: the image, the graph that made it and the values it used."""

    image: bytes
    graph: dict
    used: dict  # seed, steps, size, checkpoint... as sent to ComfyUI, plus workflow and server
    prompt_id: str
    notes: list[str] = field(default_factory=list)


def _lost(message: str, after_submit: bool) -> ComfyUnavailable:
    """The server went away; ``after_submit`` says whether it had the job (then the render failed)."""
    error = ComfyUnavailable(message)
    error.after_submit = after_submit
    return error


class RenderEvents:
    """ComfyUI's progress in the page's terms: node titles instead of ids, previews as data URLs
    at most every PREVIEW_INTERVAL_S (a fast sampler sends more than a browser wants to draw)."""

    def __init__(self, workflow: Workflow, emit: Callable[[dict], None]):
        self.workflow = workflow
        self.emit = emit
        self.last_preview = 0.0

    def __call__(self, event: dict) -> None:
        kind = event["type"]
        if kind == "preview":
            now = time.monotonic()
            if now - self.last_preview < PREVIEW_INTERVAL_S:
                return
            self.last_preview = now
            encoded = base64.b64encode(event["image"]).decode("ascii")
            event = {"type": "preview", "url": f"data:{event['mime']};base64,{encoded}"}
        elif kind == "node":
            node = self.workflow.graph.get(event["node"], {})
            event = {**event, "class_type": node.get("class_type"),
                     "title": (node.get("_meta") or {}).get("title") or node.get("class_type")}
        self.emit(event)


class ComfyPool:
    """Several ComfyUI servers: each job goes to the reachable one with the shortest queue."""

    def __init__(self, urls: list[str], stall_s: float = 300.0, probe_timeout_s: float = 2.0,
                 load: ServerLoad | None = None, client_prefix: str = CLIENT_PREFIX):
        self.urls = tuple(urls)
        self.stall_s = stall_s
        self.client_prefix = client_prefix
        self.clients = [ComfyClient(u, stall_s=stall_s, client_prefix=client_prefix) for u in urls]
        self.probe_timeout_s = probe_timeout_s
        self.load = load or ServerLoad()

    @property
    def first(self) -> ComfyClient:
        """The first configured server, for choices such as checkpoints and samplers."""
        return self.clients[0]

    def _probe(self, client: ComfyClient) -> ComfyClient:
        """The same server asked with a short timeout: a dead one must not hold up the others."""
        return ComfyClient(client.base_url, http_timeout_s=self.probe_timeout_s, client_prefix=self.client_prefix)

    def client_for(self, url: str) -> ComfyClient:
        """The client of a server, also one no longer in the list (a job submitted there before a restart)."""
        return next((c for c in self.clients if c.base_url == url),
                    None) or ComfyClient(url, stall_s=self.stall_s, client_prefix=self.client_prefix)

    @staticmethod
    def _ask_each(ask: Callable, clients: list[ComfyClient]) -> list:
        """All servers at once, so several dead ones cost one timeout, not one each."""
        if len(clients) <= 1:
            return [ask(c) for c in clients]
        with ThreadPoolExecutor(max_workers=len(clients)) as probes:
            return list(probes.map(ask, clients))

    def _queue_length(self, client: ComfyClient) -> int | None:
        try:
            queue = self._probe(client).queue()
            return len(queue.get("queue_running", [])) + len(queue.get("queue_pending", []))
        except ComfyError:
            return None

    def claim(self, exclude: set[str] = frozenset()) -> ComfyClient:
        """The reachable server with the shortest queue, counted as busy until `release`."""
        candidates = [c for c in self.clients if c.base_url not in exclude]
        if len(candidates) == 1 and not exclude:
            lengths = [0]  # one server: its own errors say what is wrong
        else:
            lengths = self._ask_each(self._queue_length, candidates)
        reachable = {}
        for client, length in zip(candidates, lengths):
            if length is None:
                log.info("ComfyUI at %s is not answering; skipped", client.base_url)
            else:
                reachable.setdefault(client.base_url, length)
        if not reachable:
            tried = ", ".join(c.base_url for c in candidates) or "none left"
            raise ComfyUnavailable(f"no ComfyUI server is reachable (tried {tried}). {START_HINT}")
        url = self.load.claim_least_busy(reachable)
        return next(c for c in candidates if c.base_url == url)

    def release(self, client: ComfyClient) -> None:
        self.load.release(client.base_url)

    def status(self) -> list[dict]:
        return self._ask_each(self._server_status, self.clients)

    def ours_in_queues(self) -> dict[str, list[str]]:
        """Per reachable server, the prompt ids in its queue that carry our client id prefix."""
        def ask(client):
            try:
                return self._probe(client).ours_in_queue()
            except ComfyError:
                return None
        answers = self._ask_each(ask, self.clients)
        return {c.base_url: ids for c, ids in zip(self.clients, answers) if ids is not None}

    def _server_status(self, client: ComfyClient) -> dict:
        try:
            stats = self._probe(client).system_stats()
        except ComfyError as exc:
            return {"url": client.base_url, "state": "unreachable", "error": exc.message}
        system = stats.get("system", {}) if isinstance(stats, dict) else {}
        return {"url": client.base_url, "state": "ready", "version": system.get("comfyui_version")}

    # --- one render, wherever it can run ------------------------------------------------

    @staticmethod
    def choose_checkpoint(client: ComfyClient, workflow: Workflow, requested: str | None) -> tuple[str | None, str | None]:
        """Settings first, then the workflow's own if ComfyUI has it, else the first ComfyUI lists."""
        if workflow.roles.checkpoint is None:
            return None, None
        if requested:
            return requested, None
        try:
            available = client.checkpoints()
        except ComfyError as exc:
            if exc.code == "comfyui_unreachable":
                raise
            return workflow.checkpoint, None
        if workflow.checkpoint in available:
            return workflow.checkpoint, None
        if not available:
            raise ComfyError("ComfyUI has no checkpoints: put a model file in ComfyUI/models/checkpoints",
                             code="comfyui_no_checkpoint")
        return available[0], (f"the workflow's checkpoint '{workflow.checkpoint}' is not in ComfyUI; "
                              f"used '{available[0]}' instead")

    def render(self, workflow: Workflow, params: RenderParams, on_event: Callable[[dict], None],
               cancel: threading.Event | None = None) -> Rendered:
        """Run the workflow on the least busy server; if that server drops out, on another with the
        same seed. ``on_event`` gets ``note`` (something the person should know), ``setup`` (the server
        and the values it was given), ``queued``, ``started`` and the progress in the page's terms."""
        events = RenderEvents(workflow, on_event)
        client = self.claim()
        try:
            return self._render_on(client, workflow, params, events, cancel)
        except ComfyUnavailable as lost:
            # The server dropped out: another reachable one takes the job, else say so.
            mid_job = getattr(lost, "after_submit", False)
            what = "stopped answering during the job" if mid_job else "did not answer"
            if len(self.clients) == 1:
                if not mid_job:
                    raise
                raise _lost(f"ComfyUI at {client.base_url} {what}. {lost.message}", mid_job) from lost
            try:
                other = self.claim(exclude={client.base_url})
            except ComfyUnavailable:
                raise _lost(f"ComfyUI at {client.base_url} {what} and no other ComfyUI server is reachable",
                            mid_job) from lost
            events.emit({"type": "note", "text": f"ComfyUI at {client.base_url} {what}; the job was sent to "
                                                 f"{other.base_url} instead"})
            log.warning("%s dropped out, resubmitting to %s", client.base_url, other.base_url)
            return self._render_on(other, workflow, params, events, cancel)

    def _render_on(self, client: ComfyClient, workflow: Workflow, params: RenderParams, events: RenderEvents,
                   cancel) -> Rendered:
        try:
            checkpoint, note = self.choose_checkpoint(client, workflow, params.checkpoint)
            if note:
                events.emit({"type": "note", "text": note})
            graph, used = fill(workflow, dataclasses.replace(params, checkpoint=checkpoint))
            # A failover keeps the seed the first server was given, so the picture is the same one.
            params.seed = used.get("seed", params.seed)
            used = {"workflow": workflow.name, "server": client.base_url, **used}
            events.emit({"type": "setup", "render": used})
            result = client.render(graph, events, cancel=cancel, heavy_nodes={workflow.roles.sampler},
                                   output_nodes={workflow.roles.output})
        finally:
            self.release(client)
        return Rendered(image=result.images[0].data, graph=graph, used=used, prompt_id=result.prompt_id,
                        notes=result.notes)

    # --- a render submitted before a restart ------------------------------------------

    def resume(self, workflow: Workflow, params: RenderParams, submitted: dict, used: dict,
               on_event: Callable[[dict], None], cancel: threading.Event | None = None,
               wait_s: float = 30.0) -> Rendered:
        """Pick up a prompt a previous run submitted (``submitted``: server, client_id, prompt_id, graph;
        ``used``: the values it was given): follow it, collect it if it finished, send the same graph
        (same seed) again if ComfyUI lost it. A server that does not answer is waited for ``wait_s``
        (it may be starting too), then another takes the job with the same seed, or it fails."""
        events = RenderEvents(workflow, on_event)
        server, graph = submitted["server"], submitted["graph"]
        client = self.client_for(server)
        heavy, outputs = {workflow.roles.sampler}, {workflow.roles.output}
        deadline = time.monotonic() + wait_s
        while True:
            try:
                result = client.render(graph, events, cancel=cancel, heavy_nodes=heavy, output_nodes=outputs,
                                       submitted=submitted)
                break
            except PromptLost as lost:
                events.emit({"type": "note", "text": f"{lost.message}; it was sent again with the same seed"})
                log.warning("%s; resubmitting %s", lost.message, submitted["prompt_id"])
                result = client.render(graph, events, cancel=cancel, heavy_nodes=heavy, output_nodes=outputs)
                break
            except ComfyUnavailable as gone:
                if time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                others = [c for c in self.clients if c.base_url != server]
                if not others:
                    raise _lost(f"ComfyUI at {server} is not reachable since speech2image restarted, so the render "
                                f"it had for this job could not be collected. {START_HINT}", True) from gone
                try:
                    other = self.claim(exclude={server})
                except ComfyUnavailable:
                    raise _lost(f"ComfyUI at {server} is not reachable since speech2image restarted and no other "
                                "ComfyUI server is reachable", True) from gone
                events.emit({"type": "note", "text": f"ComfyUI at {server} is not reachable since the restart; the "
                                                     f"job was sent to {other.base_url} with the same seed"})
                params.seed = used.get("seed", params.seed)
                return self._render_on(other, workflow, params, events, cancel)
        return Rendered(image=result.images[0].data, graph=graph, used=used, prompt_id=result.prompt_id,
                        notes=result.notes)
