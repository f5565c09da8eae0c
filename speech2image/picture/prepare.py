"""A job's render, prepared in two pure steps: what to render, then the graph for the server that renders it.

``render_job`` decides what does not depend on the server: the workflow's form (a new picture or a change),
the picture to change and its strength, and the seed (drawn once here, so a failover renders the same
picture). ``graph_for`` fills the graph from that and from what the chosen server has (its models, the name
the picture to change got there). Neither changes its arguments; the pool does the asking and uploading.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from ..config import MAX_SEED
from .comfy.protocol import ComfyError
from .img2img import img2img_form, txt2img_form
from .workflows import RenderParams, Workflow, fill


@dataclass(frozen=True)
class Edit:
    """The picture a job changes: its job id, its PNG, the seed it was rendered with, how much may change."""

    parent: str
    png: bytes
    seed: int | None
    strength: float
    size: tuple[int, int] | None = None  # the picture's own, which a change keeps
    keeps: dict = field(default_factory=dict)  # the picture's model and sampler, which a change keeps too


@dataclass(frozen=True)
class RenderJob:
    """What one job renders, wherever it runs: the workflow in the form it needs, and its values (seed set)."""

    workflow: Workflow
    params: RenderParams
    notes: tuple[str, ...] = ()
    size: tuple[int, int] | None = None  # a change's picture size: its graph takes it from the picture
    last_model: str | None = None  # the model used last, the automatic choice when the workflow's is not there


@dataclass(frozen=True)
class ServerFacts:
    """What the chosen server has: ``models`` None when it could not list them; ``image`` the uploaded
    picture's name there (for a change)."""

    url: str
    models: tuple[str, ...] | None = None
    image: str | None = None


def render_job(workflow: Workflow, params: RenderParams, edit: Edit | None = None, rng: random.Random | None = None,
               chosen: frozenset[str] = frozenset(), last_model: str | None = None) -> RenderJob:
    """A new picture from ``workflow`` (its text-to-image form), or a change of ``edit``'s picture (its
    image-to-image form, ``edit.strength``, and the parent's own size, seed, model and sampler unless the
    job chose its own: ``chosen`` names the values the person set for this job)."""
    notes: tuple[str, ...] = ()
    size = None
    if edit is not None:
        size = edit.size
        workflow, note = img2img_form(workflow)
        notes = (note,) if note else ()
        seed = params.seed if params.seed is not None else edit.seed
        kept = {name: value for name, value in edit.keeps.items() if name not in chosen and value}
        params = dataclasses.replace(params, image_data=edit.png, image_name=f"{edit.parent}.png",
                                     denoise=edit.strength, width=None, height=None, seed=seed, **kept)
    else:
        workflow = txt2img_form(workflow)
        params = dataclasses.replace(params, denoise=None, image_data=None, image_name=None)
    if params.seed is None or params.seed < 0:
        params = dataclasses.replace(params, seed=(rng or random).randint(0, MAX_SEED))
    return RenderJob(workflow, params, notes, size, last_model)


def choose_checkpoint(workflow: Workflow, requested: str | None, available: tuple[str, ...] | None,
                      last_model: str | None = None) -> tuple[str | None, str | None]:
    """The checkpoint and a note: the job's (or the settings'), else the workflow's own if the server has it
    (or cannot say), else the model used last if the server has it, else the first the server lists; a
    stable choice, said in the note. ``ComfyError`` when it lists none."""
    if workflow.roles.checkpoint is None:
        return None, None
    if requested:
        return requested, None
    if available is None or workflow.checkpoint in available:
        return workflow.checkpoint, None
    if not available:
        raise ComfyError("ComfyUI has no checkpoints: put a model file in ComfyUI/models/checkpoints",
                         code="comfyui_no_checkpoint")
    chosen = last_model if last_model in available else available[0]
    # one wording for either way, so the same choice is not announced again on the next job
    return chosen, (f"the workflow's checkpoint '{workflow.checkpoint}' is not in ComfyUI; used '{chosen}' "
                    "automatically (the model used last, else the first ComfyUI lists; choose one in Settings "
                    "to fix it)")


def graph_for(job: RenderJob, server: ServerFacts) -> tuple[dict, dict, list[str]]:
    """The filled graph for ``server``, the values it was given (with the workflow and server) and notes."""
    checkpoint, note = choose_checkpoint(job.workflow, job.params.checkpoint, server.models, job.last_model)
    graph, used = fill(job.workflow, dataclasses.replace(job.params, checkpoint=checkpoint,
                                                         image=server.image or job.params.image))
    if job.size is not None and "width" not in used:
        used.update(width=job.size[0], height=job.size[1])
    return graph, {"workflow": job.workflow.name, "server": server.url, **used}, [note] if note else []
