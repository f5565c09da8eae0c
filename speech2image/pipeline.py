"""The pipeline: a job runs transcribe -> write_prompt -> render in a background worker
and reports every step as an event to its browser session.

Each stage is a plain object with one job (asr, prompt_writer, comfy + workflows,
store); this module composes them, keeps per-stage timings, and turns failures
into a definite end state with a message for the page. Finished results are on
disk before the job says done.
"""
from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .asr import Transcriber
from .comfy import ComfyClient, ComfyError, ComfyPool, ComfyUnavailable, RenderCancelled, ServerLoad, parse_urls
from .errors import BadInput, UserFacingError
from .metrics import Metrics
from .prompt_writer import PromptPlan, PromptWriter, caption_for
from .store import JobHistory, OutputStore, new_job_id
from .tts import Voices
from .workflows import RenderParams, WorkflowLibrary, fill

log = logging.getLogger(__name__)

ACTIVE_STAGES = ("pending", "transcribing", "writing_prompt", "submitting", "queued", "rendering", "saving")
PREVIEW_INTERVAL_S = 0.15


class JobCancelled(Exception):
    pass


@dataclass
class JobRequest:
    session: str
    audio: bytes | None = None
    transcript: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    caption: str | None = None
    preset: str | None = None
    model: str | None = None
    workflow: str | None = None
    checkpoint: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg: float | None = None
    width: int | None = None
    height: int | None = None
    tts_engine: str | None = None


@dataclass
class RenderDefaults:
    """What the settings say when a request names nothing; 0/None/'' keep the workflow's own value."""

    comfyui_url: str
    workflow: str
    checkpoint: str = ""
    steps: int = 0
    cfg: float = 0.0
    width: int = 0
    height: int = 0
    seed: int = -1
    render_timeout_s: float = 900.0


@dataclass
class Job:
    id: str
    request: JobRequest
    created: float = field(default_factory=time.time)
    stage: str = "pending"
    transcript: str | None = None
    plan: PromptPlan | None = None
    render: dict = field(default_factory=dict)  # seed, checkpoint, workflow, size actually used
    queue_position: int | None = None
    percent: float = 0.0
    image_url: str | None = None
    thumb_url: str | None = None
    audio_url: str | None = None
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    error: dict | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def session(self) -> str:
        return self.request.session

    @property
    def finished(self) -> bool:
        return self.stage not in ACTIVE_STAGES

    def snapshot(self) -> dict:
        plan = self.plan
        return {
            "job_id": self.id,
            "stage": self.stage,
            "created": self.created,
            "transcript": self.transcript,
            "prompt": plan.prompt if plan else None,
            "negative_prompt": plan.negative_prompt if plan else None,
            "caption": plan.caption if plan else None,
            "prompt_source": plan.source if plan else None,
            "prompt_notice": plan.notice if plan else None,
            "render": self.render,
            "queue_position": self.queue_position,
            "percent": round(self.percent, 1),
            "image_url": self.image_url,
            "thumb_url": self.thumb_url,
            "audio_url": self.audio_url,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": list(self.notes),
            "error": self.error,
        }


class EventHub:
    """Per-session fan-out: a browser session sees its own jobs' events and nobody else's."""

    def __init__(self, max_backlog: int = 2000):
        self._subscribers: dict[str, set[queue.Queue]] = defaultdict(set)
        self._lock = threading.Lock()
        self.max_backlog = max_backlog

    def subscribe(self, session: str) -> queue.Queue:
        subscription: queue.Queue = queue.Queue(maxsize=self.max_backlog)
        with self._lock:
            self._subscribers[session].add(subscription)
        return subscription

    def unsubscribe(self, session: str, subscription: queue.Queue) -> None:
        with self._lock:
            subscribers = self._subscribers.get(session)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[session]

    def publish(self, session: str, event: dict) -> None:
        event.setdefault("t", time.time())
        with self._lock:
            targets = list(self._subscribers.get(session, ()))
        for subscription in targets:
            try:
                subscription.put_nowait(event)
            except queue.Full:
                log.warning("dropping an event for a browser that stopped reading")


class Pipeline:
    def __init__(
        self,
        transcriber: Transcriber,
        prompt_writer: PromptWriter,
        workflows: WorkflowLibrary,
        store: OutputStore,
        defaults: RenderDefaults,
        hub: EventHub | None = None,
        voices: Voices | None = None,
        history: JobHistory | None = None,
        metrics: Metrics | None = None,
        workers: int = 4,
        max_jobs_per_session: int = 3,
        max_jobs_kept: int = 500,
        speech_wait_s: float = 120.0,
    ):
        self.transcriber = transcriber
        self.prompt_writer = prompt_writer
        self.workflows = workflows
        self.store = store
        self.defaults = defaults
        self.hub = hub or EventHub()
        self.max_jobs_kept = max_jobs_kept
        self.max_jobs_per_session = max_jobs_per_session
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.voices = voices or Voices("off")
        self.history = history
        self.metrics = metrics or Metrics()
        self.speech_wait_s = speech_wait_s
        self._speech_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="speech")
        self._server_load = ServerLoad()

    # --- public interface -------------------------------------------------------

    def comfy_pool(self) -> ComfyPool:
        return ComfyPool(parse_urls(self.defaults.comfyui_url), render_timeout_s=self.defaults.render_timeout_s,
                         load=self._server_load)

    def comfy(self) -> ComfyClient:
        """The first configured server, for choices such as checkpoints and workflows."""
        return self.comfy_pool().clients[0]

    def submit(self, request: JobRequest) -> Job:
        if request.audio is None and not (request.transcript or "").strip() and not (request.prompt or "").strip():
            raise BadInput("send a recording, a transcript or a prompt", code="empty_job")
        job = Job(id=new_job_id(), request=request)
        with self._lock:
            in_flight = sum(1 for j in self._jobs.values() if j.session == request.session and not j.finished)
            if in_flight >= self.max_jobs_per_session:
                raise UserFacingError(f"you already have {in_flight} jobs running; wait for one to finish or "
                                      "cancel it", code="too_many_jobs", status=429)
            self._jobs[job.id] = job
            self._forget_old()
        self._emit(job, {"type": "job", "stage": job.stage})
        self.metrics.job_started()
        self._executor.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs_for(self, session: str) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if job.session == session]

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and not job.finished:
            job.cancel_event.set()
            self._emit(job, {"type": "cancelling"})
        return job

    def shutdown(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel_event.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._speech_executor.shutdown(wait=False, cancel_futures=True)

    # --- running a job --------------------------------------------------------

    def _forget_old(self) -> None:
        while len(self._jobs) > self.max_jobs_kept:
            oldest = next((j for j in self._jobs.values() if j.finished), None)
            if oldest is None:
                return
            del self._jobs[oldest.id]

    def _emit(self, job: Job, event: dict) -> None:
        event["job_id"] = job.id
        self.hub.publish(job.session, event)

    def _set_stage(self, job: Job, stage: str, **extra) -> None:
        job.stage = stage
        if stage not in ACTIVE_STAGES:  # the end: the page gets the whole state in one message
            extra["snapshot"] = job.snapshot()
        self._emit(job, {"type": "stage", "stage": stage, **extra})

    def _check_cancel(self, job: Job) -> None:
        if job.cancel_event.is_set():
            raise JobCancelled()

    def _run(self, job: Job) -> None:
        started = time.perf_counter()
        outcome, extra = "done", {}
        try:
            self._transcribe(job)
            self._write_prompt(job)
            # The caption is spoken while ComfyUI renders, so the voice is ready with the picture.
            speech = self._speech_executor.submit(self._speak, job)
            try:
                self._render(job)
            finally:
                self._await_speech(job, speech)
            job.percent = 100.0
        except (JobCancelled, RenderCancelled):
            outcome = "cancelled"
        except UserFacingError as exc:
            outcome, extra = "error", {"error": self._failure(job, exc.code, exc.message)}
        except Exception:
            log.exception("job %s failed", job.id)
            outcome, extra = "error", {"error": self._failure(
                job, "internal_error", "the job failed unexpectedly; the server log has the details")}
        job.timings["total"] = time.perf_counter() - started
        # Recorded before it is announced: a page told "done" finds it in the gallery and the metrics.
        job.stage = outcome
        self._keep(job)
        self.metrics.job_ended(outcome, job.timings)
        self._set_stage(job, outcome, **extra)
        # One structured line per job for log tools: ids, outcome, timings; never audio or transcript.
        log.info("job_finished %s", json.dumps({
            "job_id": job.id, "outcome": job.stage, "source": "audio" if job.timings.get("asr") is not None else "text",
            "prompt_source": job.plan.source if job.plan else None, "workflow": job.render.get("workflow"),
            "server": job.render.get("server"), "checkpoint": job.render.get("checkpoint"),
            "error": job.error["code"] if job.error else None,
            "timings": {k: round(v, 4) for k, v in job.timings.items()},
        }))

    def _keep(self, job: Job) -> None:
        """Into the gallery's history; a job that cannot be recorded says so instead of vanishing."""
        if self.history is None:
            return
        try:
            self.history.record(job.snapshot(), job.session, time.time())
        except UserFacingError as exc:
            log.error("job %s not kept in history: %s", job.id, exc.message)

    def _failure(self, job: Job, code: str, message: str) -> dict:
        job.error = {"code": code, "message": message, "stage": job.stage}
        log.warning("job %s failed at %s: %s", job.id, job.stage, message)
        return job.error

    def _transcribe(self, job: Job) -> None:
        request = job.request
        if request.audio is None:
            job.transcript = (request.transcript or "").strip() or None
            return
        self._set_stage(job, "transcribing")
        t0 = time.perf_counter()
        transcript = self.transcriber.transcribe(request.audio)
        request.audio = None  # the recording is not kept once transcribed
        job.timings["asr"] = time.perf_counter() - t0
        job.transcript = transcript.text
        self._emit(job, {"type": "transcript", "text": transcript.text, "duration_s": transcript.duration_s,
                         "elapsed_s": transcript.elapsed_s})

    def _write_prompt(self, job: Job) -> None:
        self._check_cancel(job)
        request = job.request
        if (request.prompt or "").strip():
            prompt = request.prompt.strip()
            job.plan = PromptPlan(prompt=prompt, negative_prompt=(request.negative_prompt or "").strip(),
                                  caption=(request.caption or "").strip() or caption_for(job.transcript or prompt),
                                  source="user")
            self._emit(job, {"type": "prompt", "plan": job.plan.to_dict()})
            return
        self._set_stage(job, "writing_prompt")
        t0 = time.perf_counter()
        job.plan = self.prompt_writer.write(
            job.transcript, preset=request.preset, session=job.session, model=request.model,
            on_token=lambda text: self._emit(job, {"type": "token", "text": text}),
        )
        job.timings["prompt"] = time.perf_counter() - t0
        self._emit(job, {"type": "prompt", "plan": job.plan.to_dict()})

    def _speak(self, job: Job) -> None:
        """Never raises: a voice that fails leaves the picture alone and says so."""
        t0 = time.perf_counter()
        try:
            spoken = self.voices.get(job.request.tts_engine).speak(job.plan.caption)
            if spoken is None:
                return
            self.store.save_audio(job.id, spoken.wav)
            job.timings["speech"] = time.perf_counter() - t0
            job.audio_url = f"/outputs/{job.id}.wav"
            self._emit(job, {"type": "audio", "url": job.audio_url, "duration_s": round(spoken.duration_s, 2),
                             "engine": spoken.engine, "voice": spoken.voice})
        except UserFacingError as exc:
            self._voice_failed(job, exc.message)
        except Exception as exc:
            log.exception("speech for job %s failed", job.id)
            self._voice_failed(job, str(exc))

    def _voice_failed(self, job: Job, message: str) -> None:
        note = f"The voice failed: {message}"
        job.notes.append(note)
        self._emit(job, {"type": "audio_error", "message": note})

    def _await_speech(self, job: Job, speech) -> None:
        try:
            speech.result(timeout=self.speech_wait_s)
        except Exception:
            self._voice_failed(job, f"no audio after {self.speech_wait_s:g} s")

    def choose_checkpoint(self, client: ComfyClient, workflow, requested: str | None) -> tuple[str | None, str | None]:
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

    def _render(self, job: Job) -> None:
        self._check_cancel(job)
        self._set_stage(job, "submitting")
        request, defaults = job.request, self.defaults
        workflow = self.workflows.load(request.workflow or defaults.workflow)
        pool = self.comfy_pool()
        t0 = time.perf_counter()
        seed = request.seed if request.seed is not None else defaults.seed
        seed = seed if seed is not None and seed >= 0 else None

        def pick(value, default):
            return value if value not in (None, "", 0) else (default or None)

        def prepare(client: ComfyClient) -> tuple[dict, dict]:
            checkpoint, note = self.choose_checkpoint(client, workflow, request.checkpoint or defaults.checkpoint or None)
            if note:
                job.notes.append(note)
            params = RenderParams(
                prompt=job.plan.prompt, negative_prompt=job.plan.negative_prompt, seed=seed,
                steps=pick(request.steps, defaults.steps), cfg=pick(request.cfg, defaults.cfg),
                width=pick(request.width, defaults.width), height=pick(request.height, defaults.height),
                checkpoint=checkpoint,
            )
            graph, used = fill(workflow, params)
            job.render = {"workflow": workflow.name, "server": client.base_url, **used}
            self._emit(job, {"type": "render", "render": job.render, "notes": list(job.notes)})
            return graph, used

        last_preview = [0.0]

        def on_event(event: dict) -> None:
            kind = event["type"]
            if kind == "queued":
                job.queue_position = event["position"]
                self._set_stage(job, "queued", position=event["position"])
            elif kind == "started":
                job.queue_position = None
                self._set_stage(job, "rendering")
            elif kind == "preview":
                now = time.monotonic()
                if now - last_preview[0] >= PREVIEW_INTERVAL_S:
                    last_preview[0] = now
                    encoded = base64.b64encode(event["image"]).decode("ascii")
                    self._emit(job, {"type": "preview", "url": f"data:{event['mime']};base64,{encoded}"})
            else:
                if "percent" in event:
                    job.percent = max(job.percent, event["percent"])
                if kind == "node":
                    node = workflow.graph.get(event["node"], {})
                    event = {**event, "class_type": node.get("class_type"),
                             "title": (node.get("_meta") or {}).get("title") or node.get("class_type")}
                self._emit(job, dict(event))

        def run_on(client: ComfyClient):
            try:
                graph, used = prepare(client)
                return client.render(graph, on_event, cancel=job.cancel_event, heavy_nodes={workflow.roles.sampler},
                                     output_nodes={workflow.roles.output}), graph, used
            finally:
                pool.release(client)

        client = pool.claim()
        try:
            try:
                result, graph, used = run_on(client)
            except ComfyUnavailable as lost:
                # The server dropped out: another reachable one takes the job, else say so.
                mid_job = getattr(lost, "after_submit", False)
                what = "stopped answering during the job" if mid_job else "did not answer"
                if len(pool.clients) == 1:
                    if not mid_job:
                        raise
                    raise ComfyUnavailable(f"ComfyUI at {client.base_url} {what}. {lost.message}") from lost
                try:
                    other = pool.claim(exclude={client.base_url})
                except ComfyUnavailable:
                    raise ComfyUnavailable(f"ComfyUI at {client.base_url} {what} and no other ComfyUI server "
                                           "is reachable") from lost
                seed = job.render.get("seed", seed)
                job.notes.append(f"ComfyUI at {client.base_url} {what}; the job was sent to {other.base_url} instead")
                log.warning("job %s: %s dropped out, resubmitting to %s", job.id, client.base_url, other.base_url)
                result, graph, used = run_on(other)
        finally:
            job.timings["render"] = time.perf_counter() - t0
        job.notes.extend(result.notes)
        self._set_stage(job, "saving")
        t1 = time.perf_counter()
        plan = job.plan
        size = self.store.save_image(job.id, result.images[0].data, {
            "speech2image:transcript": job.transcript, "speech2image:prompt": plan.prompt,
            "speech2image:negative_prompt": plan.negative_prompt, "speech2image:caption": plan.caption,
            "speech2image:seed": str(used.get("seed")), "speech2image:checkpoint": used.get("checkpoint"),
            "speech2image:workflow": workflow.name, "speech2image:comfyui_prompt_id": result.prompt_id,
        }, graph)
        job.timings["save"] = time.perf_counter() - t1
        job.render.update(size)
        job.image_url = f"/outputs/{job.id}.png"
        job.thumb_url = f"/outputs/{job.id}.thumb.jpg"
        self._emit(job, {"type": "image", "url": job.image_url, "thumb_url": job.thumb_url, "render": job.render,
                         "notes": list(job.notes)})
