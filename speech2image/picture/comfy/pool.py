"""Several ComfyUI servers as one: server choice, checkpoint choice and failover.

The pool lives as long as its URL list: the pipeline keeps one and replaces it only when
the list changes, so every job sees the others' load. With no list, it asks ``discovery``
for the ComfyUI on this computer each time (the answer is remembered a few minutes there).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AbstractSet, Callable

from ..detect import ModelInfo
from ..families import MODEL_FOLDERS, Dialect, dialect_for, family
from ..prepare import RenderJob, graph_for
from ..workflows import RenderParams, Workflow, WorkflowError, WorkflowLibrary
from .client import CLIENT_PREFIX, ComfyClient
from .discovery import ComfyDiscovery, device_kind
from .events import CPU_STEP_S, CPU_WARN_S, RenderEvents, cpu_estimate
from .protocol import START_HINT, ComfyError, ComfyUnavailable, PromptLost

if TYPE_CHECKING:
    from ..catalog import ModelCatalog

log = logging.getLogger(__name__)


def parse_urls(value: str) -> list[str]:
    """SPEECH2IMAGE_COMFYUI_URL may list several servers, comma-separated (one per GPU or machine);
    none (empty) means: find the one on this computer."""
    return [u.strip().rstrip("/") for u in (value or "").split(",") if u.strip()]


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


class ComfyPool:
    """Several ComfyUI servers: each job goes to the reachable one with the shortest queue."""

    def __init__(self, urls: list[str], stall_s: float = 300.0, probe_timeout_s: float = 2.0,
                 load: ServerLoad | None = None, discovery: ComfyDiscovery | None = None,
                 client_prefix: str = CLIENT_PREFIX, catalog: "ModelCatalog | None" = None):
        """``urls``: the configured servers; none: the one ``discovery`` finds (a default one probes
        the usual local ports). ``client_prefix`` marks our prompts in ComfyUI's queue."""
        self.urls = tuple(urls)
        self.stall_s = stall_s
        self.client_prefix = client_prefix
        self.discovery = None if self.urls else (discovery or ComfyDiscovery())
        self._clients = {u: ComfyClient(u, stall_s=stall_s, client_prefix=client_prefix) for u in self.urls}
        self._clients_lock = threading.Lock()
        self.probe_timeout_s = probe_timeout_s
        self.load = load or ServerLoad()
        if catalog is None:
            from ..catalog import ModelCatalog  # the catalog asks servers through this package: imported late
            catalog = ModelCatalog()
        self.catalog = catalog  # the servers' model files and their families
        self._devices: dict[str, str | None] = {}  # url -> cpu or gpu, from /system_stats
        self._cpu_speed: dict[str, tuple[float, float]] = {}  # url -> a timed CPU step: (megapixels, seconds)

    def _client(self, url: str) -> ComfyClient:
        with self._clients_lock:
            if url not in self._clients:
                self._clients[url] = ComfyClient(url, stall_s=self.stall_s, client_prefix=self.client_prefix)
            return self._clients[url]

    @property
    def clients(self) -> list[ComfyClient]:
        """The configured servers, or the one found on this computer (none when nothing is found)."""
        if self.urls:
            return [self._clients[u] for u in self.urls]
        assert self.discovery is not None  # there is one whenever no servers are configured
        found = self.discovery.find()
        return [self._client(found.url)] if found.url else []

    def how(self, url: str) -> str:
        """How the address was found: configured, discovered (it answered on a probed port) or started (ours)."""
        if url in self.urls:
            return "configured"
        assert self.discovery is not None  # not a configured server: discovery found it
        found = self.discovery.find()
        return found.how if found.url == url else "discovered"

    @property
    def first(self) -> ComfyClient:
        """The first server, for choices such as checkpoints and samplers; with none found, the first
        address looked at, whose errors then say that nothing answers there."""
        clients = self.clients
        if clients:
            return clients[0]
        assert self.discovery is not None  # configured servers are never none
        return self._client(self.discovery.candidates[0])

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

    def claim(self, exclude: AbstractSet[str] = frozenset()) -> ComfyClient:
        """The reachable server with the shortest queue, counted as busy until `release`."""
        candidates = [c for c in self.clients if c.base_url not in exclude]
        if not candidates and self.discovery is not None and not exclude:
            raise self.discovery.unavailable(self.discovery.find())
        if len(candidates) == 1 and not exclude:
            lengths = [0]  # one server: its own errors say what is wrong
        else:
            lengths = self._ask_each(self._queue_length, candidates)
        reachable: dict[str, int] = {}
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

    def queued(self) -> int | None:
        """Prompts queued or running on all reachable servers (anyone's); None when none answers."""
        lengths = [n for n in self._ask_each(self._queue_length, self.clients) if n is not None]
        return sum(lengths) if lengths else None

    def release(self, client: ComfyClient) -> None:
        self.load.release(client.base_url)

    def status(self) -> list[dict]:
        """Each server's state (ready, unreachable, or starting when it is ours coming up), version,
        device (cpu or gpu) and how its address was found; with none found, what each address answered."""
        if self.discovery is not None:
            found = self.discovery.find()
            if found.url is None:
                launch = self.discovery.launch_status()
                missing = [{"url": p.url, "state": "unreachable", "how": "discovery", "error": p.answer}
                           for p in found.tried]
                if launch:  # the ComfyUI we were to start: why it is not running
                    missing.insert(0, {**launch, "state": "unreachable", "how": "started"})
                return missing
        servers = self._ask_each(self._server_status, self.clients)
        if self.discovery is not None:
            for server in servers:
                if server["how"] == "started":
                    launch = self.discovery.launch_status()
                    assert launch is not None  # a server we started: the launcher has a folder
                    server.update({**launch, "state": server["state"]})
                    if server["state"] != "ready" and self.discovery.starting(server["url"]):
                        server["state"] = "starting"
                elif server["state"] != "ready":
                    self.discovery.forget()  # it went away: look again next time
        return servers

    def offered(self, source: str) -> list[str] | None:
        """What the first server offers for a setting whose choices come from ComfyUI (the model files of
        every model folder, samplers, schedulers); None when it does not answer or cannot say (asked with a
        short timeout)."""
        try:
            client = self._probe(self.first)
            if source == "checkpoints":  # the Model setting takes a file of any model folder
                return sorted({name for folder in MODEL_FOLDERS for name in client.model_files(folder)})
            return client.choices(source)
        except ComfyError:
            return None

    def ours_in_queues(self) -> dict[str, list[str]]:
        """Per reachable server, the prompt ids in its queue that carry our client id prefix."""
        def ask(client):
            try:
                return self._probe(client).ours_in_queue()
            except ComfyError:
                return None
        answers = self._ask_each(ask, self.clients)
        return {c.base_url: ids for c, ids in zip(self.clients, answers) if ids is not None}

    def orphans(self, known_prompts) -> dict[str, list[str]]:
        """Our prompts in the queues that ``known_prompts()`` (the ids jobs own) does not name, per server."""
        # known before and after the queues: a prompt that started or ended meanwhile is still known
        known = known_prompts()
        found = self.ours_in_queues()
        if not any(found.values()):
            return {}
        known |= known_prompts()
        orphans = {url: [p for p in ids if p not in known] for url, ids in found.items()}
        return {url: ids for url, ids in orphans.items() if ids}

    def remove(self, prompts: dict[str, list[str]]) -> dict[str, dict[str, str]]:
        """Take these prompts (per server: our ids) out of ComfyUI: deleted while queued, interrupted while
        running (only that prompt); per server, each id's outcome or what went wrong."""
        outcomes: dict[str, dict[str, str]] = {}
        for url, ids in prompts.items():
            client = self.client_for(url)
            for prompt_id in ids:
                try:
                    outcomes.setdefault(url, {})[prompt_id] = client.cancel(prompt_id)
                except ComfyError as exc:
                    outcomes.setdefault(url, {})[prompt_id] = f"not removed: {exc.message}"
        return outcomes

    def _server_status(self, client: ComfyClient) -> dict:
        url = client.base_url
        try:
            stats = self._probe(client).system_stats()
        except ComfyError as exc:
            return {"url": url, "state": "unreachable", "how": self.how(url), "error": exc.message}
        system = stats.get("system", {}) if isinstance(stats, dict) else {}
        self._devices[url] = device_kind(stats)
        return {"url": url, "state": "ready", "how": self.how(url), "version": system.get("comfyui_version"),
                "device": self._devices[url]}

    # --- how long a render takes on a CPU ------------------------------------------------

    def device(self, client: ComfyClient) -> str | None:
        """cpu or gpu, as the server's /system_stats says (asked once); None when it cannot be told."""
        url = client.base_url
        if url not in self._devices:
            try:
                self._devices[url] = device_kind(self._probe(client).system_stats())
            except ComfyError:
                return None
        return self._devices[url]

    @staticmethod
    def _megapixels(used: dict) -> float | None:
        width, height = used.get("width"), used.get("height")
        if not isinstance(width, (int, float)) or not isinstance(height, (int, float)) or width * height <= 0:
            return None
        return width * height / 1e6

    def _remember_speed(self, client: ComfyClient, used: dict, seconds_per_step: float | None) -> None:
        megapixels = self._megapixels(used)
        if seconds_per_step and megapixels and self._devices.get(client.base_url) == "cpu":
            # kept as an SD 1.5 step would have cost: another family's job scales it by its own cost
            self._cpu_speed[client.base_url] = (megapixels, seconds_per_step / family(used.get("family")).step_cost)

    def _slow_on_cpu(self, client: ComfyClient, used: dict) -> str | None:
        """A warning when ComfyUI has only a CPU and this size x steps x the model's family would take more
        than CPU_WARN_S, from the last render timed there, else from CPU_STEP_S (see cpu_estimate)."""
        megapixels, steps = self._megapixels(used), used.get("steps")
        if not megapixels or not isinstance(steps, int) or self.device(client) != "cpu":
            return None
        cost = family(used.get("family")).step_cost  # SDXL's step costs ~3 of SD 1.5's, Flux's ~14
        estimate = cost * cpu_estimate(steps, megapixels, self._cpu_speed.get(client.base_url, CPU_STEP_S))
        if estimate <= CPU_WARN_S:
            return None
        about = f"{round(estimate / 60)} min" if estimate >= 90 else f"{round(estimate)} s"
        return (f"ComfyUI runs on the CPU here: {used['width']}×{used['height']} at {steps} steps will take about "
                f"{about}. Fewer steps or a smaller size is much faster.")

    # --- one render, wherever it can run ------------------------------------------------

    def dialect(self, workflows: WorkflowLibrary, settings) -> Dialect | None:
        """How a prompt is written for the model the settings would draw a new picture with; None when that
        cannot be told now (the prompt is then written the usual way: SD's tags and a negative prompt)."""
        try:
            workflow = workflows.load(settings.workflow)
        except WorkflowError:
            return None  # the render says what is wrong with it
        model = self.model_for(workflow, settings.checkpoint or None)
        if model is None:
            return None
        cfg = settings.cfg or (None if workflow.shipped else workflow.defaults.get("cfg"))
        return dialect_for(model.family, model.variant, cfg)

    def model_for(self, workflow: Workflow, requested: str | None) -> ModelInfo | None:
        """The model a new picture would be drawn with on the first server (for the prompt's dialect);
        None when that cannot be told now (no server answers, or it cannot list its models)."""
        clients = self.clients
        return self.catalog.model_for(self._probe(clients[0]), workflow, requested) if clients else None

    def render(self, job: RenderJob, on_event: Callable[[dict], None], on_submit: Callable[[dict], None],
               cancel: threading.Event | None = None) -> Rendered:
        """Run the job on the least busy server; if that server drops out, on another with the same seed.
        ``on_event`` gets ``note`` (something the person should know), ``setup`` (the server and the values
        it was given), ``queued``, ``started`` and the progress in the page's terms; ``on_submit`` gets the
        server, client id, prompt id and graph before the prompt is posted (see ``ComfyClient.render``)."""
        events = RenderEvents(job.workflow, on_event)
        client = self.claim()
        try:
            return self._render_on(client, job, events, on_submit, cancel)
        except ComfyUnavailable as lost:
            # The server dropped out: another reachable one takes the job, else say so.
            mid_job = getattr(lost, "after_submit", False)
            what = "stopped answering during the job" if mid_job else "did not answer"
            if self.discovery is not None and not mid_job:
                # The ComfyUI found earlier went away: look again, once.
                self.discovery.forget()
                again = self.clients
                if not again:
                    raise self.discovery.unavailable(self.discovery.find()) from lost
                if again[0].base_url == client.base_url:
                    raise
                return self._render_on(self.claim(), job, events, on_submit, cancel)
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
            return self._render_on(other, job, events, on_submit, cancel)

    @staticmethod
    def _upload_picture(client: ComfyClient, workflow: Workflow, params: RenderParams) -> str:
        """The picture to change, sent to the server that renders the job (again after a failover)."""
        used = {node["class_type"] for node in workflow.graph.values()}
        missing = client.missing_nodes(used & {"LoadImage", "VAEEncode"})
        if missing:
            raise ComfyError(f"ComfyUI at {client.base_url} lacks {' and '.join(missing)}, which changing a picture "
                             "needs", code="comfyui_missing_nodes")
        assert params.image_data is not None and params.image_name is not None  # set together; the caller checks
        return client.upload_image(params.image_data, params.image_name)

    def _render_on(self, client: ComfyClient, job: RenderJob, events: RenderEvents, on_submit, cancel) -> Rendered:
        workflow = job.workflow
        try:
            if self.discovery is not None and self.discovery.starting(client.base_url):
                events.emit({"type": "waiting", "text": "Starting ComfyUI…"})
                self.discovery.wait_started(client.base_url, cancel)
            image = (self._upload_picture(client, workflow, job.params)
                     if job.params.image_data is not None else None)
            facts = self.catalog.facts(client, job, image)
            graph, used, notes = graph_for(job, facts)
            for note in notes:
                events.emit({"type": "note", "text": note})
            warning = self._slow_on_cpu(client, used)
            if warning:
                events.emit({"type": "note", "text": warning})
            events.emit({"type": "setup", "render": used})
            result = client.render(graph, events, on_submit=on_submit, cancel=cancel,
                                   heavy_nodes={workflow.roles.sampler}, output_nodes={workflow.roles.output})
            self._remember_speed(client, used, events.steps.seconds_per_step)
            if events.started is not None and not job.sketch:  # what "auto" live sketches go by
                self.catalog.timed(used, time.monotonic() - events.started)
        finally:
            self.release(client)
        return Rendered(image=result.images[0].data, graph=graph, used=used, prompt_id=result.prompt_id,
                        notes=result.notes)

    # --- a render submitted before a restart ------------------------------------------

    def resume(self, job: RenderJob, submitted: dict, used: dict, on_event: Callable[[dict], None],
               on_submit: Callable[[dict], None], cancel: threading.Event | None = None,
               wait_s: float = 30.0) -> Rendered:
        """Pick up a prompt a previous run submitted (``submitted``: server, client_id, prompt_id, graph;
        ``used``: the values it was given): follow it, collect it if it finished, send the same graph
        (same seed) again if ComfyUI lost it. A server that does not answer is waited for ``wait_s``
        (it may be starting too), then another takes the job with the same seed, or it fails."""
        workflow = job.workflow
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
                result = client.render(graph, events, on_submit=on_submit, cancel=cancel, heavy_nodes=heavy,
                                       output_nodes=outputs)
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
                params = dataclasses.replace(job.params, seed=used.get("seed", job.params.seed))
                return self._render_on(other, dataclasses.replace(job, params=params), events, on_submit, cancel)
        return Rendered(image=result.images[0].data, graph=graph, used=used, prompt_id=result.prompt_id,
                        notes=result.notes)
