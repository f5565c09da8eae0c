"""Changing a picture: which picture a job changes, whether it changes one at all, and how much.

A job is a *new picture* or a *change* of an earlier one. The request may say so itself (``edit_of``
names the picture, as the gallery's *Change this picture* does; ``mode`` is the page's switch); else
the prompt writer decides from the wording or the LLM's answer, and only in a tab that already has a
picture. The decision travels with the job (its snapshot, the history, the PNG's metadata).
"""
from __future__ import annotations

import io
import logging
from typing import Callable

from PIL import Image

from ..config import Settings
from ..errors import BadInput, UserFacingError
from ..picture import Edit, RenderJob, RenderParams, Workflow, render_job
from ..prompt import DEFAULT_STRENGTH, PromptPlan, Turn, subject_of
from .job import JobRequest
from .store import JOB_ID, JobHistory, OutputStore

log = logging.getLogger(__name__)

MODES = ("auto", "new", "edit")
# What a change keeps of its picture unless the person chose otherwise for the job (the size and seed too).
KEPT_BY_A_CHANGE = ("checkpoint", "sampler")


class PictureMissing(UserFacingError):
    status = 410
    code = "edit_image_missing"


def missing(job_id: str, why: str = "is no longer on disk") -> PictureMissing:
    return PictureMissing(f"the picture of job {job_id} {why} (outputs/{job_id}.png), so it cannot be changed; "
                          "pick another picture or make a new one")


def readable_png(job_id: str, data: bytes | None) -> bytes:
    """The picture's bytes when they are a whole PNG; else the error naming it (checked here, before
    ComfyUI's LoadImage would fail on it in the middle of a render)."""
    if data is None:
        raise missing(job_id)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise ValueError(f"it is {image.format}, not a PNG")
            image.load()
    except Exception as exc:  # PIL raises many kinds for a damaged file
        log.warning("job %s: its picture cannot be read: %s", job_id, exc)
        raise missing(job_id, "cannot be read: the file is damaged") from exc
    return data


class Pictures:
    """The pictures jobs change, as the history and the outputs folder have them."""

    def __init__(self, history: JobHistory | None, store: OutputStore, recent: Callable[[str], list]):
        self.history = history
        self.store = store
        self.recent = recent  # the jobs of a session still in memory, for a pipeline without history

    def entry(self, job_id: str) -> dict:
        """A finished picture by job id: 404 when there is none, 410 when its file is gone."""
        entry = self.history.get(job_id) if self.history is not None and JOB_ID.match(job_id or "") else None
        if entry is None or not entry.get("image_url"):
            raise UserFacingError(f"there is no picture with the job id '{job_id}' in this data folder to change",
                                  code="unknown_edit_of", status=404)
        readable_png(job_id, self.store.image(job_id))
        return entry

    def last(self, session: str) -> str | None:
        if self.history is not None:
            return self.history.last_picture(session)
        done = [j for j in self.recent(session) if j.image_url]
        return max(done, key=lambda j: j.created).id if done else None

    def png(self, job_id: str) -> bytes:
        return readable_png(job_id, self.store.image(job_id))

    def base(self, job_id: str) -> Turn | None:
        """The prompt a change starts from: the parent's own."""
        entry = self.history.get(job_id) if self.history is not None else None
        if not entry or not entry.get("prompt"):
            return None
        return Turn(transcript=entry.get("transcript") or "", subject=subject_of(entry["prompt"]),
                    prompt=entry["prompt"])

    def rendered(self, job_id: str) -> dict:
        """What the picture was rendered with (seed, size, checkpoint...), as its history entry keeps it."""
        entry = self.history.get(job_id) if self.history is not None else None
        return dict((entry or {}).get("render") or {})

    def edit(self, job_id: str, strength: float) -> Edit:
        """The picture a job changes, with the seed and size it was rendered with; 410 when its file is gone."""
        rendered = self.rendered(job_id)
        size = (rendered["width"], rendered["height"]) if isinstance(rendered.get("width"), int) else None
        keeps = {name: rendered.get(name) for name in KEPT_BY_A_CHANGE}
        return Edit(job_id, self.png(job_id), self.seed(job_id), strength, size, keeps)

    def prepare(self, request: JobRequest, plan: PromptPlan, settings: Settings,
                workflow: Workflow) -> tuple[dict, RenderJob]:
        """A job's (a draft's, a sketch's) render: a new picture or a change (the decision), and what to send."""
        decision = decide(request, plan, settings)
        edit = self.edit(decision["parent"], decision["strength"]) if decision["mode"] == "edit" else None
        params = RenderParams.from_settings(plan.prompt, plan.negative_prompt, settings)
        return decision, render_job(workflow, params, edit, chosen=frozenset(request.overrides),
                                    last_model=self.last_model())

    def last_model(self) -> str | None:
        """The model of the newest picture: the automatic choice stays on it when models are added."""
        newest = self.history.list(limit=1, only_images=True) if self.history is not None else []
        model = ((newest[0].get("render") or {}) if newest else {}).get("checkpoint")
        return model if isinstance(model, str) else None

    def seed(self, job_id: str) -> int | None:
        seed = self.rendered(job_id).get("seed")
        return seed if isinstance(seed, int) else None

    def resolve(self, request: JobRequest) -> None:
        """At acceptance: the named picture exists (404/410 otherwise), and which picture "edit" would change."""
        if request.mode not in MODES:
            raise BadInput(f"'mode' must be one of {', '.join(MODES)}", code="bad_mode")
        if request.edit_of:
            self.entry(request.edit_of)
            return
        request.last_picture = self.last(request.session)
        if request.mode == "edit" and request.last_picture is None:
            raise BadInput("there is no picture in this tab to change yet; make one first, or pick one in the "
                           "gallery and use Change this picture", code="no_picture_to_change")


def decide(request: JobRequest, plan: PromptPlan, settings: Settings) -> dict:
    """New picture or change, who decided, the picture changed (for a new one: the one that could have
    been, for the page's switch) and the strength: the job's setting, else the plan's, else the default."""
    parent = request.edit_of or request.last_picture
    if request.edit_of:  # named by the request; with mode "edit" by the page's switch (the picture in view)
        mode, by = "edit", ("page" if request.mode == "edit" else "request")
    elif request.mode in ("new", "edit"):
        mode, by = request.mode, "page"
    elif parent is None:
        mode, by = "new", "no_picture"
    else:
        mode, by = ("edit" if plan.mode == "edit" else "new"), plan.source
    strength = None
    if mode == "edit":
        strength = settings.denoise or plan.strength or DEFAULT_STRENGTH
    return {"mode": mode, "by": by, "parent": parent, "strength": strength}
