"""Graphs from stock ComfyUI nodes for each family, built from its row in ``families``.

The shipped workflows are one checkpoint graph (CheckpointLoaderSimple -> KSampler). For a model
of another kind, ``family_form`` rewrites its model part as the family says: a diffusion model gets
UNETLoader with its text encoders and VAE (picked from what the server's loaders offer), the
family's latent node, ModelSamplingSD3 / ModelSamplingAuraFlow with its shift, FluxGuidance on the
positive prompt. ``with_loras`` puts LoraLoader nodes (LoraLoaderModelOnly for a diffusion model)
between the loader and everything it fed. Nothing here asks a server; what is missing is said
before anything is queued, naming the files and the folders they go in.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .comfy.protocol import ComfyError
from .detect import ModelInfo
from .families import DIFFUSION_FOLDERS, Family, family
from .workflows import Workflow, WorkflowError, is_link

MODEL_INPUTS = ("ckpt_name", "unet_name")


@dataclass(frozen=True)
class Companions:
    """The files a diffusion model is loaded with: its loader's inputs (text encoders, type), its VAE."""

    clip: dict
    vae: str


def _pick(patterns: tuple[str, ...], files: list[str], taken: Collection[str] = ()) -> str | None:
    """The first file (in the server's order) whose name matches the first pattern that any matches."""
    for pattern in patterns:
        for name in files:
            base = re.split(r"[\\/]", name)[-1].lower()
            if name not in taken and re.search(pattern, base):
                return name
    return None


def companions(model: ModelInfo, loaders: dict[str, dict[str, list[str]]]) -> Companions:
    """The text encoders and VAE for ``model`` among the files the server's loaders list (``loaders``:
    node class -> input -> choices, from /object_info). ``ComfyError`` naming what to put where when
    one is missing."""
    row = family(model.family)
    clip_inputs = loaders.get(row.clip_loader) or {}
    if not clip_inputs:
        raise ComfyError(f"this ComfyUI has no {row.clip_loader} node, which {row.label} diffusion models need: "
                         "update ComfyUI", code="comfyui_missing_nodes")
    clip: dict[str, str] = {}
    missing: list[str] = []
    taken: set[str] = set()
    for encoder in row.encoders:
        found = _pick(encoder.patterns, clip_inputs.get(encoder.input, []), taken)
        if found is None:
            missing.append(f"a {encoder.label} text encoder (such as {encoder.example}) in ComfyUI/models/text_encoders")
        else:
            clip[encoder.input] = found
            taken.add(found)
    if row.clip_type:
        if row.clip_type not in clip_inputs.get("type", []):
            raise ComfyError(f"this ComfyUI cannot load {row.label} text encoders ({row.clip_loader} has no type "
                             f"'{row.clip_type}'): update ComfyUI", code="comfyui_too_old")
        clip["type"] = row.clip_type
    vae = _pick(row.vae, (loaders.get("VAELoader") or {}).get("vae_name", []))
    if vae is None:
        missing.append(f"the {row.label} VAE (such as {row.vae_example}) in ComfyUI/models/vae")
    if missing or vae is None:
        raise ComfyError(f"{model.name} is a {row.label} diffusion model and needs files this ComfyUI does not have: "
                         f"put {' and '.join(missing)}, then try again", code="model_companions_missing")
    return Companions(clip, vae)


def needed_loaders(model: ModelInfo | None) -> tuple[str, ...]:
    """The loader nodes whose choices ``companions`` needs from the server, for this model."""
    if model is None or model.folder not in DIFFUSION_FOLDERS:
        return ()
    return (family(model.family).clip_loader, "VAELoader")


def _new_id(graph: dict) -> str:
    numbers = [int(n) for n in graph if n.isdigit()]
    return str(max(numbers, default=0) + 1)


def _add(graph: dict, class_type: str, inputs: dict, title: str) -> str:
    node_id = _new_id(graph)
    graph[node_id] = {"class_type": class_type, "_meta": {"title": title}, "inputs": inputs}
    return node_id


def _rewire(graph: dict, old: list, new: list, skip: str) -> None:
    """Every link to ``old`` now comes from ``new`` (but the inputs of ``skip``, the node put between)."""
    for node_id, node in graph.items():
        if node_id != skip:
            for name, value in node["inputs"].items():
                if is_link(value) and list(value) == old:
                    node["inputs"][name] = list(new)


def _loader(workflow: Workflow, what: str = "the model's own nodes") -> str:
    if workflow.roles.checkpoint is None:
        raise WorkflowError(f"{workflow.name} has no model loader (CheckpointLoaderSimple) to put {what} after",
                            code="unmappable_workflow")
    return workflow.roles.checkpoint[0]


def with_loras(workflow: Workflow, loras: list[tuple[str, float]], model_only: bool) -> Workflow:
    """LoRA loaders between the model loader and what it fed; ``model_only`` for diffusion models."""
    if not loras:
        return workflow
    graph = copy.deepcopy(workflow.graph)
    loader = _loader(workflow, "LoRAs")
    model, clip = [loader, 0], [loader, 1]
    if graph[loader]["class_type"] not in ("CheckpointLoaderSimple", "UNETLoader"):
        raise WorkflowError(f"{workflow.name}: LoRAs can be added after a CheckpointLoaderSimple or UNETLoader only",
                            code="unmappable_workflow")
    for name, strength in loras:
        if model_only:
            lora = _add(graph, "LoraLoaderModelOnly", {"model": model, "lora_name": name, "strength_model": strength},
                        f"LoRA {name}")
            _rewire(graph, model, [lora, 0], lora)
        else:
            lora = _add(graph, "LoraLoader", {"model": model, "clip": clip, "lora_name": name,
                                              "strength_model": strength, "strength_clip": strength}, f"LoRA {name}")
            _rewire(graph, model, [lora, 0], lora)
            _rewire(graph, clip, [lora, 1], lora)
            clip = [lora, 1]
        model = [lora, 0]
    return dataclasses.replace(workflow, graph=graph)


def family_form(workflow: Workflow, model: ModelInfo, found: Companions | None) -> Workflow:
    """The shipped checkpoint graph made right for ``model``'s family (``found``: its companions, for a
    diffusion model). An SD 1.5 / SDXL checkpoint keeps the graph as it is."""
    row: Family = family(model.family)
    graph = copy.deepcopy(workflow.graph)
    roles = workflow.roles
    loader = _loader(workflow)
    spot = (loader, "ckpt_name")
    if model.diffusion_model:
        if found is None:
            raise ValueError("a diffusion model needs its companions")
        graph[loader] = {"class_type": "UNETLoader", "_meta": {"title": "Load Diffusion Model"},
                         "inputs": {"unet_name": model.name, "weight_dtype": "default"}}
        clip = _add(graph, row.clip_loader, dict(found.clip), "Load Text Encoders")
        vae = _add(graph, "VAELoader", {"vae_name": found.vae}, "Load VAE")
        _rewire(graph, [loader, 1], [clip, 0], clip)
        _rewire(graph, [loader, 2], [vae, 0], vae)
        spot = (loader, "unet_name")
    extra: dict[str, Any] = {}
    if row.patch:
        patch = _add(graph, row.patch, {"model": [loader, 0], "shift": model.recipe.shift or 3.0}, "Sampling shift")
        _rewire(graph, [loader, 0], [patch, 0], patch)
        extra["shift"] = (patch, "shift")
    if row.guidance_node:
        sampler = graph[roles.sampler]["inputs"]
        guider = sampler["guider"][0] if is_link(sampler.get("guider")) else roles.sampler
        positive = graph[guider]["inputs"]
        key = "positive" if "positive" in positive else "conditioning"
        node = _add(graph, "FluxGuidance", {"conditioning": positive[key], "guidance": model.recipe.guidance or 3.5},
                    "Flux Guidance")
        positive[key] = [node, 0]
        extra["guidance"] = (node, "guidance")
    if roles.latent is not None and graph[roles.latent]["class_type"] in ("EmptyLatentImage", "EmptySD3LatentImage"):
        graph[roles.latent]["class_type"] = row.latent
    return dataclasses.replace(workflow, graph=graph, roles=dataclasses.replace(roles, checkpoint=spot, **extra))


def lora_problem(lora: ModelInfo | None, name: str, model: ModelInfo | None) -> str | None:
    """Why a LoRA cannot go with this model (not in ComfyUI, or made for another family); None when it can."""
    if lora is None:
        return f"the LoRA {name} is not in ComfyUI (put it in ComfyUI/models/loras)"
    if model is not None and lora.source != "unknown" and family(lora.family).arch != family(model.family).arch:
        return (f"the LoRA {name} was made for {family(lora.family).label} and the model {model.name} is "
                f"{model.label}: choose a LoRA made for {model.label}, or another model")
    return None
