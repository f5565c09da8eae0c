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
from .detect import ModelInfo, detect
from .families import SKETCH, Recipe, text_to_image, uses_negative
from .graphs import companions, family_form, lora_problem, with_loras
from .img2img import img2img_form, txt2img_form
from .workflows import RenderParams, Workflow, fill

# The render values a model's recipe fills when the settings leave them open.
RECIPE_VALUES = ("width", "height", "steps", "cfg", "sampler", "scheduler", "guidance", "shift")


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
    sketch: bool = False  # a live sketch: small and few steps (``families.SKETCH``), never kept


@dataclass(frozen=True)
class ServerFacts:
    """What the chosen server has: ``models`` (checkpoints and diffusion models, with their families) None
    when it could not list them; ``image`` the uploaded picture's name there (for a change); ``loaders``
    the choices of the loader nodes a diffusion model needs (node class -> input -> files); ``loras`` its
    LoRAs (when the job asks for some); ``choices`` the person's own word on what a file is."""

    url: str
    models: tuple[ModelInfo, ...] | None = None
    image: str | None = None
    loaders: dict = field(default_factory=dict)
    loras: tuple[ModelInfo, ...] | None = None
    choices: dict = field(default_factory=dict)


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


def _describe(name: str, folder: str, choices: dict) -> ModelInfo:
    return detect(name, folder).chosen(choices.get(name))


def choose_model(workflow: Workflow, requested: str | None, available: tuple[ModelInfo, ...] | None,
                 new_picture: bool = True, choices: dict | None = None,
                 last_model: str | None = None) -> tuple[ModelInfo | None, str | None]:
    """The model and a note: the job's (or the settings'), else the workflow's own if the server has it (or
    cannot say), else the model used last if the server has it, else the first the server lists that can
    draw a new picture: a stable choice, said in the note. A shipped workflow takes a file of any model
    folder; a person's own takes what its loader loads. ``ComfyError`` when there is none."""
    if workflow.roles.checkpoint is None:
        return None, None
    choices = choices or {}
    offered = [m for m in available or () if workflow.shipped or m.folder == "checkpoints"]
    named = {m.name: m for m in offered}
    if requested:
        model = named.get(requested) or _describe(requested, "checkpoints", choices)
        if new_picture and not text_to_image(model.variant):
            raise ComfyError(f"{requested} is {'an inpainting model' if model.variant == 'inpaint' else 'a refiner'} "
                             f"({model.label}): it changes pictures but cannot draw a new one. Choose another model "
                             "for new pictures", code="model_not_for_new_pictures")
        return model, None
    own = workflow.checkpoint or ""
    if available is None or own in named:
        return named.get(own) or _describe(own, "checkpoints", choices), None
    usable = [m for m in offered if text_to_image(m.variant) or not new_picture]
    if not usable:
        raise ComfyError("ComfyUI has no models to draw with: put a checkpoint in ComfyUI/models/checkpoints "
                         "(or a diffusion model in ComfyUI/models/diffusion_models)", code="comfyui_no_checkpoint")
    chosen = next((m for m in usable if m.name == last_model), usable[0])
    # one wording for either way, so the same choice is not announced again on the next job
    return chosen, (f"the workflow's checkpoint '{own}' is not in ComfyUI; used '{chosen.name}' ({chosen.label}) "
                    "automatically (the model used last, else the first ComfyUI lists; choose one in Settings "
                    "to fix it)")


def with_recipe(params: RenderParams, recipe: Recipe) -> RenderParams:
    """The values the settings leave open (None) taken from the model's recipe."""
    open_values = {name: getattr(recipe, name) for name in RECIPE_VALUES if getattr(params, name) is None}
    return dataclasses.replace(params, **open_values)


def sketched(params: RenderParams) -> RenderParams:
    """A live sketch's values: the size and steps cut down (``SKETCH``); what is left open stays open."""
    return dataclasses.replace(params, width=params.width and SKETCH.side(params.width),
                               height=params.height and SKETCH.side(params.height),
                               steps=params.steps and min(params.steps, SKETCH.steps))


def _loras(params: RenderParams, server: ServerFacts, model: ModelInfo | None) -> tuple[list, list[str], list[str]]:
    """The job's LoRAs as (name, strength), their trigger words and notes; ``ComfyError`` for one that cannot go."""
    named = {m.name: m for m in server.loras or ()}
    chosen, words, notes = [], [], []
    for entry in params.loras or ():
        name, strength = entry["name"], float(entry.get("strength", 1.0))
        lora = named.get(name) or (None if server.loras is not None else _describe(name, "loras", server.choices))
        problem = lora_problem(lora, name, model)
        if problem or lora is None:
            raise ComfyError((problem or name)[0].upper() + (problem or name)[1:], code="lora_not_usable")
        chosen.append((name, strength))
        words += [w for w in lora.triggers if w.lower() not in params.prompt_text.lower() and w not in words]
        if lora.triggers:
            notes.append(f"The LoRA {name} adds its trigger words to the prompt: {', '.join(lora.triggers)}.")
    return chosen, words, notes


def graph_for(job: RenderJob, server: ServerFacts) -> tuple[dict, dict, list[str]]:
    """The filled graph for ``server``, the values it was given (with the workflow, server and model's
    family) and notes. A shipped workflow is drawn the way the model's family wants (its recipe fills
    what the settings leave open, its graph comes from ``graphs``); a person's own is used as it is."""
    workflow, params = job.workflow, job.params
    new_picture = params.image_data is None and params.image is None
    model, note = choose_model(workflow, params.checkpoint, server.models, new_picture, server.choices,
                               job.last_model)
    notes = [note] if note else []
    if model is not None and workflow.shipped:
        if model.source == "unknown":
            notes.append(f"What {model.name} is could not be told, so it was drawn as {model.label}; if that is "
                         "wrong, say what it is under Settings → Models.")
        params = with_recipe(params, model.recipe)
        found = companions(model, server.loaders) if model.diffusion_model else None
        workflow = family_form(workflow, model, found)
        if params.negative_text and not uses_negative(model.family, params.cfg or model.recipe.cfg):
            notes.append(f"{model.label} at CFG {params.cfg:g} does not use a negative prompt; it was left out.")
            params = dataclasses.replace(params, negative_text="")
    if job.sketch:
        params = sketched(params)
    loras, words, lora_notes = _loras(params, server, model)
    if loras:
        workflow = with_loras(workflow, loras, model_only=bool(model and model.diffusion_model))
        params = dataclasses.replace(params, prompt_text=", ".join([*words, params.prompt_text]))
    graph, used = fill(workflow, dataclasses.replace(params, checkpoint=model.name if model else None,
                                                     image=server.image or params.image))
    if job.size is not None:  # a change is drawn at its picture's own size, whatever a recipe says
        used.update(width=job.size[0], height=job.size[1])
    used = {"workflow": job.workflow.name, "server": server.url, **used}
    if model is not None:
        used.update(family=model.family, model_kind=model.label, **({"variant": model.variant} if model.variant else {}))
    if loras:
        used["loras"] = [{"name": name, "strength": strength} for name, strength in loras]
    return graph, used, notes + lora_notes
