"""Drafts: the render of a live recording started at the speaker's pause, before Stop.

When a live transcript's end-of-speech pass answers (the person went quiet), ``Drafts.start`` writes
the prompt from that text, as a job would, and sends the render to ComfyUI as a *draft* of the tab's
coming job. A draft is not a job: no row, no gallery entry, no file; only a prompt in ComfyUI under
this instance's client id, which the start-up orphan removal deletes when a crash left it there.

At Stop, ``take`` hands the draft to the job when its prompt inputs are the job's (the same words
after normalisation, the same settings, the same picture to change): the job gets the draft's id,
prompt, ComfyUI prompt and progress (``adopt``), recorded in its write-ahead row at once, and
``follow`` waits for the render there. Otherwise the draft is cancelled: deleted from ComfyUI's
queue, or interrupted only while ComfyUI runs this very prompt. New words after the pause cancel it
too (``cancel``); its prompt is kept and reused when the same words come again.

Fair to others: one draft per tab; a draft is sent only while ComfyUI's queue is empty and no job
is under way, and a job accepted for any tab cancels the other tabs' drafts, so it waits behind none.

While the person speaks, fast models also get live sketches (``sketches``), which Drafts holds: ``heard``
is the one door for the live stream's words, pauses and speech after them.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ..config import Settings
from ..errors import UserFacingError
from ..metrics import timed
from ..picture import RenderCancelled, Rendered
from ..prompt import PromptPlan, Turn
from .job import Job, JobRequest
from .sketches import Host, Sketches
from .store import new_job_id


class Pipeline(Host, Protocol):
    """What drafts use of the pipeline that holds them (``pipeline.Pipeline``)."""

    def unfinished(self) -> list[Job]: ...
    def decided(self, job: Job, decision: dict) -> None: ...
    def record_submitted(self, job: Job, submitted: dict) -> None: ...
    def render_event(self, job: Job, event: dict) -> None: ...

log = logging.getLogger(__name__)
MAX_PLANS_KEPT = 200  # tabs whose last draft's prompt is kept for the same words again


def normalise(text: str | None) -> str:
    """The words as a prompt depends on them: case, punctuation and spacing aside."""
    return " ".join(re.sub(r"[^\w\s']", " ", (text or "").lower()).split())


def inputs_of(request: JobRequest) -> tuple:
    """What a live request's prompt and render depend on, besides the settings in force: its words, the
    language they were heard in (and their translation), its choices and the picture it would change."""
    heard = request.heard or {}
    return (normalise(request.transcript), heard.get("language"), normalise(heard.get("translation")),
            tuple(sorted((k, repr(v)) for k, v in request.overrides.items())),
            request.mode, request.edit_of, request.last_picture)


class Skipped(Exception):
    """The draft was not sent: others' work is under way, or no ComfyUI answers."""


class Draft:
    """One tab's draft: its prompt, its render in ComfyUI, and how far it got."""

    def __init__(self, request: JobRequest, settings: Settings):
        self.id = new_job_id()  # the id its job gets when it is adopted
        self.request = request
        self.settings = settings
        self.inputs = inputs_of(request)
        self.cancel_event = threading.Event()
        self.lock = threading.Lock()  # its state against adoption: events go to the draft or to its job
        self.started = time.monotonic()
        self.render_started: float | None = None  # when ComfyUI began to run it
        self.render_ended: float | None = None
        self.plan: PromptPlan | None = None
        self.turn: Turn | None = None
        self.decision: dict | None = None
        self.submitted: dict | None = None
        self.stage = "writing_prompt"
        self.render: dict = {}
        self.percent = 0.0
        self.queue_position: int | None = None
        self.notes: list[str] = []
        self.planned = threading.Event()
        self.done = threading.Event()
        self.result: Rendered | None = None
        self.error: BaseException | None = None
        self.job: Job | None = None  # the job once adopted
        self.discarded = False

    @property
    def session(self) -> str:
        return self.request.session

    def render_s(self) -> float:
        """Seconds ComfyUI has spent running it so far."""
        if self.render_started is None:
            return 0.0
        return (self.render_ended or time.monotonic()) - self.render_started

    def adoptable(self) -> bool:
        """Not cancelled, and either still under way or ComfyUI had it (its outcome is the job's)."""
        return not self.cancel_event.is_set() and (self.error is None or self.submitted is not None)


class Drafts:
    """Every tab's draft, for the pipeline that holds this."""

    def __init__(self, pipeline: Pipeline, workers: int = 4):
        self.pipeline = pipeline
        self._drafts: dict[str, Draft] = {}  # session -> its draft not yet taken
        self._adopted: dict[str, Draft] = {}  # job id -> the draft it took over, until followed
        self._plans: dict[str, Draft] = {}  # session -> its last draft with a prompt, for the same words again
        self._wasted: dict[str, float] = {}  # session -> render seconds its thrown-away drafts took
        self._leaving: dict[str, Draft] = {}  # session -> its cancelled draft until it is out of ComfyUI
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="draft")
        self.sketches = Sketches(pipeline, self._busy)  # while the person speaks, for fast models

    # --- the live stream's side -----------------------------------------------------------

    def heard(self, kind: str, request: JobRequest) -> None:
        """What a tab's live recording heard (``speech.LiveStream``'s ``on_heard``): ``words`` (committed
        words, ``request.transcript``) are sketched, a ``pause`` starts the draft, ``speaking`` cancels it;
        ``stop`` (the person pressed Stop) ends the sketches at once, so the final pass has the CPU."""
        log.debug("live recording of %s: %s %s", request.session, kind, request.transcript or "")
        if kind == "words":
            self.sketches.update(request)
        elif kind == "pause":
            self.sketches.stop(request.session)  # the draft, drawn with the full recipe, takes over
            self.start(request)
        elif kind == "speaking":
            self.cancel(request.session, "the speaker went on")
        elif kind == "stop":
            self.sketches.stop(request.session)

    def start(self, request: JobRequest) -> Draft | None:
        """A draft of the tab's coming job from the words heard so far (``request.transcript``); None when
        drafting is off, the server shuts down, or the request could not be a job (the job will say why)."""
        pipeline = self.pipeline
        with self._lock:
            current = self._drafts.get(request.session)
        settings = request.settings_on(pipeline.settings)
        if settings.drafts == "off" or not pipeline.accepting or not normalise(request.transcript):
            self.cancel(request.session, "nothing to draw")
            return None
        try:
            pipeline.pictures.resolve(request)
        except UserFacingError:
            self.cancel(request.session, "not a job")
            return None
        if current is not None and current.inputs == inputs_of(request) and current.settings == settings \
                and current.adoptable():
            return current  # the same words again: the draft under way is this one
        self.cancel(request.session, "new words")
        draft = Draft(request, settings)
        with self._lock:
            self._drafts[request.session] = draft
        pipeline.metrics.draft("started")
        self._executor.submit(self._run, draft)
        return draft

    def cancel(self, session: str, why: str) -> None:
        """The tab's draft is no longer wanted (new words, the recording ended without a job)."""
        if why != "the speaker went on":
            self.sketches.stop(session)
        with self._lock:
            draft = self._drafts.pop(session, None)
        if draft is not None:
            self._discard(draft, why)

    # --- the pipeline's side -----------------------------------------------------------

    def take(self, request: JobRequest, settings: Settings) -> Draft | None:
        """At acceptance: the tab's draft when it is this request's (to ``adopt``), else it is cancelled."""
        with self._lock:
            draft = self._drafts.pop(request.session, None)
        if draft is None:
            return None
        if (request.audio is None and not (request.prompt or "").strip() and draft.inputs == inputs_of(request)
                and draft.settings == settings and draft.adoptable()):
            return draft
        self._discard(draft, "the final words differ")
        return None

    def drop(self, draft: Draft, why: str) -> None:
        """A taken draft whose job was refused."""
        self._discard(draft, why)

    def accepted(self, job: Job, draft: Draft | None) -> None:
        """A job was accepted, with the draft ``take`` gave it (or none): it adopts it, its record says what
        the tab's drafts cost, and the other tabs' drafts give way, so it waits behind none."""
        self.sketches.stop(job.session)
        if draft is not None:
            self.adopt(draft, job)
        self.record(job)
        self.yield_to(job.session)

    def adopt(self, draft: Draft, job: Job) -> None:
        """The draft is this job from now on: its events go to the job, its ComfyUI prompt is in the job's row."""
        with draft.lock:
            draft.job = job
            job.cancel_event = draft.cancel_event
            job.draft = {"adopted": True, "ran_s": round(time.monotonic() - draft.started, 3),
                         "render_s": round(draft.render_s(), 3), "wasted_s": self._take_wasted(job.session)}
            self._adopted[job.id] = draft
            if draft.stage in ("queued", "rendering"):  # the job's first snapshot carries on where the page is
                job.stage, job.percent, job.queue_position = draft.stage, draft.percent, draft.queue_position
            if draft.submitted is not None:
                self.pipeline.record_submitted(job, draft.submitted)
        self.pipeline.metrics.draft("adopted")
        log.info("job %s: adopted the draft started %.2f s before Stop", job.id, job.draft["ran_s"])

    def record(self, job: Job) -> None:
        """A job that took no draft: the render seconds the tab's thrown-away drafts took, if it had any."""
        if job.draft is None and job.session in self._wasted:
            job.draft = {"adopted": False, "wasted_s": self._take_wasted(job.session)}

    def yield_to(self, session: str) -> None:
        """A job was accepted for ``session``: the other tabs' drafts give way, so it waits behind none."""
        with self._lock:
            others = [s for s in self._drafts if s != session]
        for other in others:
            self.cancel(other, "another tab's job was accepted")

    def plan_for(self, job: Job) -> PromptPlan | None:
        """The prompt the job's draft wrote (waiting for it when it is being written), or the tab's last draft's
        when the words and settings are the job's; its turn joins the tab's conversation now."""
        draft = self._adopted.get(job.id)
        if draft is not None:
            draft.planned.wait()
        else:
            with self._lock:
                draft = self._plans.get(job.session)
            if draft is None or draft.inputs != inputs_of(job.request) or draft.settings != job.settings:
                return None
        if draft.plan is None or draft.turn is None:
            return None
        with self._lock:
            self._plans.pop(job.session, None)
        self.pipeline.prompt_writer.history.add(job.session, draft.turn)
        return dataclasses.replace(draft.plan)

    def follow(self, job: Job) -> Rendered | None:
        """The render of the draft this job took over, once ComfyUI finished it; None when the job has no
        draft or the draft was never sent (the job renders by itself)."""
        draft = self._adopted.pop(job.id, None)
        if draft is None:
            return None
        pipeline = self.pipeline
        with timed(job.timings, "render"):
            with draft.lock:  # what the draft did so far becomes the job's, then its events go to the job
                if draft.decision is not None:
                    pipeline.decided(job, draft.decision)
                job.notes.extend(note for note in draft.notes if note not in job.notes)
                if draft.render:
                    pipeline.render_event(job, {"type": "setup", "render": draft.render})
                if draft.stage == "queued":
                    pipeline.render_event(job, {"type": "queued", "position": draft.queue_position or 1})
                elif draft.stage == "rendering":
                    pipeline.render_event(job, {"type": "started"})
                    pipeline.render_event(job, {"type": "progress", "percent": draft.percent})
            draft.done.wait()
        if draft.error is not None:
            if draft.submitted is None and not job.cancel_event.is_set():
                return None
            raise draft.error
        return draft.result

    def release(self, job: Job) -> None:
        """The job ended (also before its render): the draft it took over is forgotten."""
        self._adopted.pop(job.id, None)

    def prompt_ids(self) -> set[str]:
        """The ComfyUI prompts of the drafts under way (not orphans while they run)."""
        with self._lock:
            drafts = list(self._drafts.values())
        return {d.submitted["prompt_id"] for d in drafts if d.submitted} | self.sketches.prompt_ids()

    def shutdown(self) -> None:
        self.sketches.shutdown()
        with self._lock:
            sessions = list(self._drafts)
        for session in sessions:
            self.cancel(session, "the server is shutting down")
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- a draft's own thread --------------------------------------------------------------

    def _run(self, draft: Draft) -> None:
        pipeline = self.pipeline
        try:
            request = draft.request
            draft.plan = self._cached(draft) or pipeline.write_plan(
                request, draft.settings, request.transcript, on_turn=lambda turn: setattr(draft, "turn", turn))
            with self._lock:
                self._plans.pop(draft.session, None)
                self._plans[draft.session] = draft
                while len(self._plans) > MAX_PLANS_KEPT:
                    self._plans.pop(next(iter(self._plans)))
            draft.planned.set()
            if draft.cancel_event.is_set():
                raise RenderCancelled("cancelled")
            self.sketches.stop(draft.session, wait_s=5.0)  # the draft takes over; the last sketch leaves ComfyUI first
            with self._lock:
                leaving = self._leaving.get(draft.session)
            if leaving is not None:  # the tab's cancelled draft too: neither is others' work
                leaving.done.wait(5.0)
            busy = None if draft.job is not None else self._busy()
            if busy:
                raise Skipped(busy)
            decision, render = pipeline.pictures.prepare(draft.request, draft.plan, draft.settings,
                                                         pipeline.workflows.load(draft.settings.workflow))
            with draft.lock:
                draft.decision = decision
                draft.notes.extend(render.notes)
                if draft.job is not None:
                    pipeline.decided(draft.job, decision)
                    draft.job.notes.extend(note for note in render.notes if note not in draft.job.notes)
            self._emit(draft, "drawing")
            draft.result = pipeline.comfy.render(render, lambda event: self._event(draft, event),
                                                 lambda submitted: self._submitted(draft, submitted),
                                                 cancel=draft.cancel_event)
        except Skipped as exc:
            draft.error = exc
            log.info("draft for %s not sent: %s", draft.session, exc)
        except Exception as exc:  # the job that adopts it fails the same way; else it is dropped
            draft.error = exc
            if not isinstance(exc, RenderCancelled):
                log.info("draft for %s ended: %s", draft.session, getattr(exc, "message", exc))
        finally:
            if draft.render_started is not None:
                draft.render_ended = time.monotonic()
            draft.planned.set()
            draft.done.set()
            with self._lock:
                if self._leaving.get(draft.session) is draft:
                    del self._leaving[draft.session]
            if draft.error is not None and draft.job is None:
                with self._lock:
                    if self._drafts.get(draft.session) is draft and draft.submitted is None:
                        del self._drafts[draft.session]  # never sent: nothing to take over
                if not draft.cancel_event.is_set() and draft.submitted is None:
                    self._emit(draft, "cancelled")

    def _cached(self, draft: Draft) -> PromptPlan | None:
        """The prompt of the tab's last draft when its words and settings were these (an LLM answer reused)."""
        with self._lock:
            last = self._plans.get(draft.session)
        if last is None or last is draft or last.inputs != draft.inputs or last.settings != draft.settings:
            return None
        draft.turn = last.turn
        return last.plan

    def _busy(self) -> str | None:
        """Why a draft must not be sent now: a job is under way, ComfyUI's queue holds work, or none answers."""
        pipeline = self.pipeline
        jobs = len(pipeline.unfinished())
        if jobs:
            return f"{jobs} job(s) under way"
        queued = pipeline.comfy.queued()
        if queued is None:
            return "no ComfyUI answers"
        return f"ComfyUI has {queued} prompt(s) queued" if queued else None

    def _submitted(self, draft: Draft, submitted: dict) -> None:
        with draft.lock:
            draft.submitted = submitted
            if draft.job is not None:
                self.pipeline.record_submitted(draft.job, submitted)

    def _event(self, draft: Draft, event: dict) -> None:
        kind = event["type"]
        with draft.lock:
            if kind == "started":
                draft.render_started = time.monotonic()
            if draft.job is not None:
                self.pipeline.render_event(draft.job, event)
                return
            if kind == "setup":
                draft.render = event["render"]
            elif kind == "note":
                draft.notes.append(event["text"])
            elif kind == "queued":
                draft.stage, draft.queue_position = "queued", event["position"]
            elif kind == "started":
                draft.stage, draft.queue_position = "rendering", None
            if "percent" in event:
                draft.percent = max(draft.percent, event["percent"])
            if kind in ("queued", "started", "progress", "node", "cached"):
                self._emit(draft, "drawing")
            elif kind == "preview":
                self._emit(draft, "drawing", preview=event["url"])

    def _emit(self, draft: Draft, state: str, **extra) -> None:
        """The tab hears of its draft: ``drawing`` (with its progress) or ``cancelled``."""
        if draft.job is None:
            self.pipeline.hub.publish(draft.session, {"type": "draft", "job_id": draft.id, "state": state,
                                                      "stage": draft.stage, "percent": round(draft.percent, 1),
                                                      **extra})

    def _discard(self, draft: Draft, why: str) -> None:
        with draft.lock:
            if draft.discarded or draft.job is not None:
                return
            draft.discarded = True
            draft.cancel_event.set()  # its render loop deletes or interrupts its own prompt in ComfyUI
            wasted = draft.render_s()
        with self._lock:
            self._wasted[draft.session] = self._wasted.get(draft.session, 0.0) + wasted
            if not draft.done.is_set():
                self._leaving[draft.session] = draft
        self.pipeline.metrics.draft("cancelled", wasted)
        self._emit(draft, "cancelled")
        log.info("draft for %s cancelled (%s) after %.2f s of rendering", draft.session, why, wasted)

    def _take_wasted(self, session: str) -> float:
        with self._lock:
            return round(self._wasted.pop(session, 0.0), 3)
