"""A job and its events: what one request asks for, where it stands, and the per-session fan-out.

``Job.write_ahead``/``Job.from_row`` are the two ends of its durable row (``store.JobHistory``):
the request and the settings frozen at acceptance go in; a job a previous run left in flight
comes back out.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from ..config import KNOBS, Settings
from ..prompt import PromptPlan
from ..speech import unsure

log = logging.getLogger(__name__)

RECOVERED_NOTE = "The server restarted during this job; it was picked up where it stopped."


@dataclass(frozen=True)
class Stage:
    """One stage of a job as the page, the CLI and the tests know it: ``label`` on the job strip, ``timed``
    (the name of its time in the page's list, None when not timed), ``span`` its slice of the overall bar
    (percent), ``end`` for the stages a job finishes in, ``page`` for the page's own (the recording)."""

    name: str
    label: str
    timed: str | None = None
    span: tuple[int, int] | None = None
    end: bool = False
    page: bool = False


# The one table of a job's stages, in order; the page gets it with the page (see ``page_table``).
STAGES = (
    Stage("listening", "Listening…", page=True),
    Stage("pending", "Starting…", span=(0, 0)),
    Stage("transcribing", "Transcribing…", "Transcribing", (0, 15)),
    Stage("writing_prompt", "Writing the prompt…", "Writing prompt", (15, 25)),
    Stage("submitting", "Sending to ComfyUI…", "Sending", (25, 28)),
    Stage("queued", "Queued", "Queued", (28, 30)),
    Stage("rendering", "Rendering…", "Rendering", (30, 95)),
    Stage("saving", "Saving…", "Saving", (95, 100)),
    Stage("done", "Done", span=(100, 100), end=True),
    Stage("prompt_ready", "Waiting for ComfyUI", end=True),
    Stage("error", "Failed", end=True),
    Stage("cancelled", "Cancelled", end=True),
)
ACTIVE_STAGES = tuple(s.name for s in STAGES if not s.end and not s.page)
FINISHED_STAGES = tuple(s.name for s in STAGES if s.end)

# The events a job sends its tab (each carries ``job_id``), and what each says.
EVENTS = {
    "job": "the job was accepted",
    "stage": "the job entered a stage (the last one carries the whole job as snapshot)",
    "transcript": "what the recording says",
    "token": "a piece of the prompt as the LLM writes it",
    "prompt": "the prompt, negative prompt and caption",
    "decision": "a new picture or a change of one, and how much may change",
    "render": "the server and the values the render was given",
    "waiting": "ComfyUI is starting",
    "node": "ComfyUI runs a node",
    "cached": "ComfyUI reused nodes it had run before",
    "progress": "a sampler step",
    "preview": "a preview of the picture",
    "image": "the picture is saved",
    "audio": "the caption is spoken",
    "audio_error": "the caption could not be spoken",
    "cancelling": "a cancel is being carried out",
    "draft": "the tab's live recording is being drawn before Stop (state drawing, with its progress; or cancelled)",
    "sketch": "a quick sketch of the words heard so far, while the person speaks (url: a JPEG data URL)",
}


def page_table() -> dict:
    """The stages and event types, as the page reads them at start."""
    return {"stages": [dataclasses.asdict(s) for s in STAGES], "events": EVENTS}


class JobCancelled(Exception):
    pass


@dataclass
class JobRequest:
    """What one job asks for: the recording or texts, and settings it overrides (by setting name)."""

    session: str
    audio: bytes | None = None
    transcript: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    caption: str | None = None
    overrides: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # stages done before it came (a live transcript's asr)
    edit_of: str | None = None  # the job whose picture to change, named by the request
    mode: str = "auto"  # new, edit (the page's switch) or auto (the wording or the LLM decides)
    last_picture: str | None = None  # the tab's latest picture when the job was accepted: what "edit" changes
    request_id: str | None = None  # the page's own id for one request: sent twice (live, then upload), one job
    heard: dict | None = None  # what its recording was heard as: language, language_probability, translation

    # What the durable row keeps of a request beyond its texts.
    KEPT = ("overrides", "edit_of", "mode", "last_picture", "request_id", "heard")

    def settings_on(self, saved: Settings) -> Settings:
        """The settings it runs with: the saved ones, with its overrides."""
        return dataclasses.replace(saved, **self.overrides)


def heard_of(request: JobRequest, settings) -> dict:
    """What a request's prompt and voice go by: the language spoken (as heard, else as asked; None:
    unknown), its probability, and Whisper's English translation of the recording."""
    heard = request.heard or {}
    asked = settings.language
    probability = heard.get("language_probability")
    return {"language": heard.get("language") or (None if asked in ("", "auto") else asked),
            "language_probability": probability, "language_unsure": unsure(probability),
            "translation": heard.get("translation")}


@dataclass
class Job:
    id: str
    request: JobRequest
    settings: Settings  # the settings in force when it was accepted, with the request's overrides
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
    has_audio: bool = False  # a recording came with it (kept on disk until transcribed)
    submitted: dict | None = None  # server, client_id, prompt_id, graph: where ComfyUI has its render
    recovered: bool = False  # picked up after a restart
    decision: dict | None = None  # mode (new/edit), who decided, the picture changed (or that could be), strength
    draft: dict | None = None  # a live recording's draft: adopted, seconds it ran before Stop, render seconds wasted

    @property
    def session(self) -> str:
        return self.request.session

    @property
    def heard(self) -> dict:
        """The language the person spoke (as heard, else as asked; None: unknown), its probability, and
        Whisper's English translation of the recording."""
        return heard_of(self.request, self.settings)

    @property
    def language(self) -> str | None:
        return self.heard["language"]

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
            **self.heard,
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
            "recovered": self.recovered,
            "decision": self.decision,
            "edit_of": self.decision["parent"] if self.decision and self.decision["mode"] == "edit" else None,
            "draft": self.draft,
        }

    def summary(self) -> dict:
        """One structured line per job for log tools: ids, outcome, timings; never audio or transcript."""
        return {
            "job_id": self.id, "outcome": self.stage, "source": "audio" if self.timings.get("asr") is not None else "text",
            "prompt_source": self.plan.source if self.plan else None, "workflow": self.render.get("workflow"),
            "server": self.render.get("server"), "checkpoint": self.render.get("checkpoint"),
            "error": self.error["code"] if self.error else None,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def write_ahead(self) -> dict:
        """What its durable row starts with: the request and the settings frozen at acceptance."""
        request = self.request
        return {
            "session": request.session, "created": self.created, "stage": self.stage,
            "request": {"transcript": request.transcript, "prompt": request.prompt,
                        "negative_prompt": request.negative_prompt, "caption": request.caption,
                        "has_audio": self.has_audio, **{name: getattr(request, name) for name in request.KEPT}},
            "settings": {name: getattr(self.settings, name) for name in KNOBS},
        }

    @classmethod
    def from_row(cls, row: dict, current: Settings) -> "Job":
        """A job a previous run left in flight, as its row describes it."""
        asked = row["request"]
        request = JobRequest(session=row["session"], transcript=asked.get("transcript"), prompt=asked.get("prompt"),
                             negative_prompt=asked.get("negative_prompt"), caption=asked.get("caption"),
                             **{name: asked[name] for name in JobRequest.KEPT if asked.get(name) is not None})
        frozen = {name: value for name, value in (row["settings"] or {}).items() if name in KNOBS}
        job = cls(id=row["id"], request=request, settings=dataclasses.replace(current, **frozen),
                  created=row["created"], stage=row["stage"], transcript=row["transcript"],
                  render=row["render"] or {}, timings=row["timings"] or {}, notes=row["notes"] or [],
                  has_audio=bool(asked.get("has_audio")), recovered=True)
        if row["plan"]:
            fields = {f.name for f in dataclasses.fields(PromptPlan)}
            job.plan = PromptPlan(**{k: v for k, v in row["plan"].items() if k in fields})
        if row["prompt_id"]:
            job.submitted = {name: row[name] for name in ("server", "client_id", "prompt_id", "graph")}
        if row["cancel_requested"]:
            job.cancel_event.set()
        return job


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
