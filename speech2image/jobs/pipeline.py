"""The pipeline: a job runs transcribe -> write_prompt -> render (its caption spoken beside it) in a
background worker and reports every step as an event to its browser session. Each stage is a plain object
(asr, prompt_writer, comfy + workflows, store); this module composes them, keeps per-stage timings, and
turns failures into a definite end state with a message for the page. Finished results are on disk before
the job says done. A live recording's job takes over the draft drawn at the pause (``drafts``).

Durable: the pipeline holds a ``Journal``, and every job has a write-ahead row in it from the moment it
is accepted, updated before each stage's effect is visible (the ComfyUI server, client id and prompt id
are recorded before the prompt is posted). ``recover`` picks up the rows a previous run left: it follows
or collects a submitted render, or resumes from the last completed stage; a job that cannot be recovered
fails with the reason.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from ..config import Settings
from ..errors import BadInput, UserFacingError
from ..metrics import Metrics, timed
from ..picture import (
    CLIENT_PREFIX,
    ComfyDiscovery,
    ComfyError,
    ComfyPool,
    ComfyUnavailable,
    ModelCatalog,
    RenderCancelled,
    Rendered,
    ServerLoad,
    WorkflowLibrary,
    launch_address,
    parse_urls,
)
from ..prompt import PromptPlan, PromptWriter, caption_for
from ..speech import AsrPool, Transcriber, Voices
from .caption import Speaker
from .drafts import Drafts
from .edits import Pictures
from .job import ACTIVE_STAGES, EventHub, Job, JobCancelled, JobRequest, heard_of
from .journal import Journal
from .store import JobHistory, OutputStore, new_job_id

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        transcriber: Transcriber | AsrPool,
        prompt_writer: PromptWriter,
        workflows: WorkflowLibrary,
        store: OutputStore,
        settings: Settings,
        hub: EventHub | None = None,
        voices: Voices | None = None,
        history: JobHistory | None = None,
        metrics: Metrics | None = None,
        workers: int = 4,
        max_jobs_kept: int = 500,
        speech_wait_s: float = 120.0,
        comfy_discovery: ComfyDiscovery | None = None,
        recover_wait_s: float = 30.0,
        catalog: ModelCatalog | None = None,
    ):
        self.prompt_writer = prompt_writer
        self.workflows = workflows
        self.store = store
        self.hub = hub or EventHub()
        self.max_jobs_kept = max_jobs_kept
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self.journal = Journal(history, store)
        self.metrics = metrics or Metrics()
        self.speaker = Speaker(self._emit, store, speech_wait_s)  # the caption, spoken beside the render
        self._server_load = ServerLoad()  # outlives pools, so a new URL list keeps counting our jobs
        self._discovery = comfy_discovery or ComfyDiscovery()  # used while no ComfyUI URL is configured
        self.catalog = catalog or ModelCatalog()  # the servers' models and their families, for every pool
        self._comfy: ComfyPool | None = None
        self.recover_wait_s = recover_wait_s  # how long a recovered job waits for its ComfyUI to answer
        # Our ComfyUI client ids name this instance, so prompts it left behind can be told from others'.
        instance = self.journal.instance_id
        self.client_prefix = f"{CLIENT_PREFIX}{instance}-" if instance else CLIENT_PREFIX
        self.accepting = True  # False once shutting down: new jobs are refused
        self.transcriber = transcriber
        self.voices = voices or Voices("off")
        self.settings = settings
        self.pictures = Pictures(history, store, self.jobs_for)  # the pictures jobs change
        self.drafts = Drafts(self)  # live recordings' renders started at the pause
        self.configure(settings)

    # --- public interface -------------------------------------------------------

    def configure(self, settings: Settings | None = None, transcriber: Transcriber | AsrPool | None = None,
                  voices: Voices | None = None) -> None:
        """New settings or components for the jobs accepted from now on; jobs under way keep theirs.
        The ComfyUI pool is rebuilt only when its servers change."""
        with self._lock:
            if transcriber is not None:
                self.transcriber = transcriber
            if voices is not None:
                self.voices = voices
            if settings is not None:
                self.settings = settings
                self.catalog.configure(settings.comfyui_dir)  # a folder we may read: headers tell the families
                urls = tuple(parse_urls(settings.comfyui_url))
                # One address on this computer and a ComfyUI folder: found there, or the folder's started there.
                at = launch_address(urls, settings.comfyui_dir)
                self._discovery.configure_launch(settings.comfyui_dir, settings.comfyui_python, settings.comfyui_args,
                                                 at)
                urls = () if at else urls
                pool = self._comfy
                if pool is None or pool.urls != urls or pool.stall_s != settings.render_stall_s:
                    self._comfy = ComfyPool(list(urls), stall_s=settings.render_stall_s,
                                            load=self._server_load, discovery=self._discovery,
                                            client_prefix=self.client_prefix, catalog=self.catalog)

    @property
    def comfy(self) -> ComfyPool:
        assert self._comfy is not None  # configure(), called from __init__, made it
        return self._comfy

    def submit(self, request: JobRequest) -> Job:
        if request.audio is None and not (request.transcript or "").strip() and not (request.prompt or "").strip():
            raise BadInput("send a recording, a transcript or a prompt", code="empty_job")
        if not self.accepting:
            raise UserFacingError("the server is shutting down and takes no new jobs; jobs under way carry on "
                                  "when it is back. Try again in a moment.", code="shutting_down", status=503)
        self.pictures.resolve(request)
        settings = request.settings_on(self.settings)
        with self._lock:
            same = self._same_request(request)
            if same is not None:
                log.info("job %s: the same request came again (%s); answering the job it started", same.id,
                         request.request_id)
                return same
        draft = self.drafts.take(request, settings)  # the tab's draft, when it is this request's
        try:
            with self._lock:
                job = Job(id=draft.id if draft else new_job_id(), request=request, has_audio=request.audio is not None,
                          settings=settings, timings=dict(request.timings))
                in_flight = sum(1 for j in self._jobs.values() if j.session == request.session and not j.finished)
                if in_flight >= self.settings.max_jobs_per_session:
                    raise UserFacingError(f"you already have {in_flight} jobs running; wait for one to finish or "
                                          "cancel it", code="too_many_jobs", status=429)
                self.journal.accept(job)
                self._jobs[job.id] = job
                self._forget_old()
        except BaseException:
            if draft is not None:
                self.drafts.drop(draft, "its job was refused")
            raise
        self.drafts.accepted(job, draft)  # the job is the draft from now on; other tabs' drafts give way
        self._emit(job, {"type": "job", "stage": job.stage})
        self.metrics.job_started()
        self._executor.submit(self._run, job)
        return job

    def _same_request(self, request: JobRequest) -> Job | None:
        """The job a request with this page-given id already started in this session (e.g. the live
        stream started it, then its socket dropped before the page heard, and the page uploaded)."""
        if not request.request_id:
            return None
        return next((j for j in self._jobs.values() if j.session == request.session
                     and j.request.request_id == request.request_id), None)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs_for(self, session: str) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if job.session == session]

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and not job.finished:
            # recorded first: a restart before ComfyUI hears of it still carries it out
            self.journal.try_write(job, cancel_requested=1)
            job.cancel_event.set()
            self._emit(job, {"type": "cancelling"})
        return job

    def recover(self) -> list[Job]:
        """Pick up the jobs a previous run left in flight; they run in the background. Call once, at start."""
        jobs = []
        for job in self.journal.in_flight(self.settings):
            with self._lock:
                if job.id in self._jobs:
                    continue
                self._jobs[job.id] = job
            jobs.append(job)
            log.info("job %s: recovering from stage %s%s", job.id, job.stage,
                     f" (ComfyUI prompt {job.submitted['prompt_id']} at {job.submitted['server']})"
                     if job.submitted else "")
            self.metrics.job_started()
            self._executor.submit(self._run, job)
        return jobs

    def unfinished(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.finished]

    def orphans(self) -> dict[str, list[str]]:
        """Prompts in ComfyUI's queues that carry this instance's client id but belong to no job of ours."""
        return self.comfy.orphans(lambda: self.journal.known_prompts() | self.drafts.prompt_ids() | {
            j.submitted["prompt_id"] for j in self.unfinished() if j.submitted})

    def remove_orphans(self) -> dict[str, dict[str, str]]:
        """Our prompts that no job follows (left by a run that stopped between posting and recording,
        or resubmitted after a restart), taken out of ComfyUI by their ids; per server, what became of each."""
        return self.comfy.remove(self.orphans())

    def stop_accepting(self) -> None:
        self.accepting = False

    def wait_for_saves(self, timeout_s: float) -> bool:
        """Shutting down: wait while a job is saving its result or carrying out a cancel; True when none is."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not any(j.stage == "saving" or j.cancel_event.is_set() for j in self._jobs.values() if not j.finished):
                    return True
            time.sleep(0.05)
        return False

    def shutdown(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel_event.set()
        self.drafts.shutdown()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.speaker.shutdown()
        self.stop_started_comfyui()

    def stop_started_comfyui(self) -> None:
        """Stop the ComfyUI this app started, if any; one it found running is never touched."""
        self._discovery.close()

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
        if stage in ACTIVE_STAGES:
            self.journal.write(job, synced=False, stage=stage)  # before anyone is told; recovery needs only the rest
        job.stage = stage
        if stage not in ACTIVE_STAGES:  # the end: the page gets the whole state in one message
            extra["snapshot"] = job.snapshot()
        self._emit(job, {"type": "stage", "stage": stage, **extra})

    def _check_cancel(self, job: Job) -> None:
        if job.cancel_event.is_set():
            raise JobCancelled()

    def _run(self, job: Job) -> None:
        with timed(job.timings, "total"):
            outcome, extra = self._stages(job)
        self.drafts.release(job)
        # What the person waited for: a live recording's transcript, ready at Stop, came before the job.
        job.timings["total"] += sum(job.request.timings.values())
        # Recorded before it is announced: a page told "done" finds it in the gallery and the metrics.
        job.stage = outcome
        self.journal.keep(job)
        self.metrics.job_ended(outcome, job.timings)
        self._set_stage(job, outcome, **extra)
        log.info("job_finished %s", json.dumps(job.summary()))

    def _stages(self, job: Job) -> tuple[str, dict]:
        """The job's stages in order; the outcome (done, cancelled, prompt_ready, error) and its details."""
        outcome, extra = "done", {}
        try:
            self._transcribe(job)
            self._write_prompt(job)
            # The caption is spoken while ComfyUI renders, so the voice is ready with the picture.
            speech = self.speaker.start(job, self.voices)
            try:
                self._render(job)
            finally:
                self.speaker.wait(job, speech)
            job.percent = 100.0
        except (JobCancelled, RenderCancelled) as exc:
            outcome = "cancelled"
            if isinstance(exc, JobCancelled) and job.submitted:
                self._cancel_in_comfy(job)
        except ComfyUnavailable as exc:
            if getattr(exc, "after_submit", False):  # it went away mid-job: the render failed
                outcome, extra = "error", {"error": self._failure(job, exc.code, exc.message)}
            else:
                # No ComfyUI at all: the prompt and its caption are the result, not a failure.
                outcome = "prompt_ready"
                why = exc.message[:1].upper() + exc.message[1:]
                job.notes.append(f"Prompt ready; there is no ComfyUI to render it. {why}")
                log.info("job %s: prompt ready, no ComfyUI reachable", job.id)
        except UserFacingError as exc:
            outcome, extra = "error", {"error": self._failure(job, exc.code, exc.message)}
        except Exception:
            log.exception("job %s failed", job.id)
            outcome, extra = "error", {"error": self._failure(
                job, "internal_error", "the job failed unexpectedly; the server log has the details")}
        return outcome, extra

    def _failure(self, job: Job, code: str, message: str) -> dict:
        job.error = {"code": code, "message": message, "stage": job.stage}
        log.warning("job %s failed at %s: %s", job.id, job.stage, message)
        return job.error

    def _transcribe(self, job: Job) -> None:
        request = job.request
        if not job.has_audio:
            job.transcript = (request.transcript or "").strip() or None
            return
        if job.transcript is not None:
            return  # transcribed before a restart
        audio = request.audio if request.audio is not None else self.store.upload(job.id)
        if audio is None:
            raise UserFacingError("the server stopped before this recording was transcribed, and the recording "
                                  "was not found on disk; record it again", code="recording_lost", status=410)
        self._set_stage(job, "transcribing")
        with timed(job.timings, "asr"):
            transcript = self.transcriber.transcribe(audio, language=job.settings.language, translate=True)
        request.heard = {"language": transcript.language, "language_probability": transcript.language_probability,
                         "translation": transcript.translation}
        self.journal.write(job, transcript=transcript.text, timings=job.timings, request=job.write_ahead()["request"])
        job.transcript = transcript.text
        request.audio = None  # the recording is not kept once its transcript is stored
        self.store.drop_upload(job.id)
        self._emit(job, {"type": "transcript", "text": transcript.text, "duration_s": transcript.duration_s,
                         "elapsed_s": transcript.elapsed_s, **job.heard})

    def _write_prompt(self, job: Job) -> None:
        self._check_cancel(job)
        if job.plan is not None:
            return  # written before a restart
        request = job.request
        prompt = (request.prompt or "").strip()
        if prompt:
            job.plan = PromptPlan(prompt=prompt, negative_prompt=(request.negative_prompt or "").strip(),
                                  caption=(request.caption or "").strip() or caption_for(job.transcript or prompt),
                                  source="user")
            self._emit(job, {"type": "prompt", "plan": job.plan.to_dict()})
            return
        job.plan = self.drafts.plan_for(job)  # written for the tab's draft from these same words
        if job.plan is None:
            self._set_stage(job, "writing_prompt")
            with timed(job.timings, "prompt"):
                job.plan = self.write_plan(request, job.settings, job.transcript,
                                           on_token=lambda text: self._emit(job, {"type": "token", "text": text}))
        self.journal.write(job, plan=job.plan.to_dict(), timings=job.timings)
        self._emit(job, {"type": "prompt", "plan": job.plan.to_dict()})

    def write_plan(self, request: JobRequest, settings: Settings, transcript: str | None, **hooks) -> PromptPlan:
        """The prompt for a request's words, in the dialect of the model its picture needs and with the
        language they were heard in; ``hooks``: the writer's ``on_token`` / ``on_turn``. A job's and a
        draft's prompt are written here alike."""
        heard = heard_of(request, settings)
        return self.prompt_writer.write(
            transcript, preset=settings.llm_preset, session=request.session, model=settings.llm_model or None,
            dialect=self.comfy.dialect(self.workflows, settings), can_edit=bool(request.edit_of or request.last_picture),
            base=self.pictures.base(request.edit_of) if request.edit_of else None,
            language=heard["language"], translation=heard["translation"], **hooks)

    def _render(self, job: Job) -> None:
        self._check_cancel(job)
        rendered = self.drafts.follow(job) or self._render_here(job)  # the draft it took over, else its own
        plan, decision = job.plan, job.decision
        assert plan is not None and decision is not None  # both come before the render
        parent, edit = decision["parent"], decision["mode"] == "edit"
        job.notes.extend(rendered.notes)
        self._set_stage(job, "saving")
        with timed(job.timings, "save"):
            size = self.store.save_image(job.id, rendered.image, {
                "transcript": job.transcript, "prompt": plan.prompt, "negative_prompt": plan.negative_prompt,
                "caption": plan.caption, "comfyui_prompt_id": rendered.prompt_id, **rendered.used,
                **({"edit_of": parent, "strength": decision["strength"]} if edit else {}),
            }, rendered.graph)
        job.render.update(size)
        job.image_url = f"/outputs/{job.id}.png"
        job.thumb_url = f"/outputs/{job.id}.thumb.jpg"
        self._emit(job, {"type": "image", "url": job.image_url, "thumb_url": job.thumb_url, "render": job.render,
                         "notes": list(job.notes)})

    def _render_here(self, job: Job) -> Rendered:
        self._set_stage(job, "submitting")
        assert job.plan is not None  # _write_prompt ran first
        decision, render = self.pictures.prepare(job.request, job.plan, job.settings,
                                                 self.workflows.load(job.settings.workflow))
        self.decided(job, decision)
        job.notes.extend(note for note in render.notes if note not in job.notes)
        on_event = lambda event: self.render_event(job, event)  # noqa: E731
        on_submit = lambda submitted: self.record_submitted(job, submitted)  # noqa: E731
        with timed(job.timings, "render"):
            if job.submitted:  # ComfyUI had it before a restart: follow it, collect it, or send it again
                return self.comfy.resume(render, job.submitted, job.render, on_event, on_submit,
                                         cancel=job.cancel_event, wait_s=self.recover_wait_s)
            return self.comfy.render(render, on_event, on_submit, cancel=job.cancel_event)

    def decided(self, job: Job, decision: dict) -> None:
        job.decision = decision
        self._emit(job, {"type": "decision", "decision": decision})

    def record_submitted(self, job: Job, submitted: dict) -> None:
        """Where ComfyUI gets the job's prompt (server, client id, prompt id, graph), recorded before it is
        posted (the hook ComfyUI's client calls) or when a draft that ComfyUI has becomes the job."""
        job.submitted = submitted
        self.journal.write(job, render=job.render, notes=job.notes, **submitted)

    def _cancel_in_comfy(self, job: Job) -> None:
        """A cancel asked for before a restart, carried out on the prompt ComfyUI still has."""
        submitted = job.submitted
        assert submitted is not None  # called only for a job ComfyUI had
        try:
            outcome = self.comfy.client_for(submitted["server"]).cancel(submitted["prompt_id"], wait_s=10.0)
            log.info("job %s: cancelled in ComfyUI after the restart (%s)", job.id, outcome)
        except ComfyError as exc:
            log.warning("job %s: could not cancel its ComfyUI prompt %s: %s", job.id, submitted["prompt_id"],
                        exc.message)

    def render_event(self, job: Job, event: dict) -> None:
        """ComfyUI's progress, already in the page's terms, onto the job and its tab."""
        kind = event["type"]
        if kind == "note":
            job.notes.append(event["text"])
        elif kind == "setup":  # the server and the values it was given (again after a failover)
            job.render = event["render"]
            self._emit(job, {"type": "render", "render": job.render, "notes": list(job.notes)})
        elif kind == "queued":
            job.queue_position = event["position"]
            self._set_stage(job, "queued", position=event["position"])
        elif kind == "started":
            job.queue_position = None
            self._set_stage(job, "rendering")
        else:
            if "percent" in event:
                job.percent = max(job.percent, event["percent"])
            self._emit(job, dict(event))
