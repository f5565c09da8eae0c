"""ComfyUI workflows in API format: load them, find the nodes to fill by following
the graph's links, and fill them.

A user's workflow is never hard-coded: the sampler is found upstream of the
output image, the prompts by following its ``positive``/``negative`` links, the
size and checkpoint by following ``latent_image`` and ``model``. A sidecar file
``<name>.roles.json`` (role -> node id) settles graphs where that is ambiguous.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import KNOBS, MAX_SEED, Settings
from ..errors import UserFacingError

OUTPUT_CLASSES = ("SaveImage", "PreviewImage", "SaveImageWebsocket")
TEXT_INPUTS = ("text", "text_g", "text_l", "prompt")
ROLE_NAMES = ("sampler", "positive", "negative", "latent", "checkpoint", "output", "seed", "steps", "cfg",
              "sampler_name", "image", "denoise", "scheduler", "guidance", "shift")
# Inputs a picture's latent passes through on its way to the sampler, and the picture to its encoder.
LATENT_LINKS = ("samples", "latent", "latent_image")
PIXEL_LINKS = ("pixels", "image", "images")
MAX_WORKFLOW_BYTES = 2 * 1024 * 1024
MAX_NODES = 500


class WorkflowError(UserFacingError):
    status = 400
    code = "bad_workflow"


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


@dataclass
class Roles:
    """Where each value goes: (node id, input name) pairs, or None when the graph has no such input."""

    sampler: str
    positive: tuple[str, str]
    negative: tuple[str, str]
    output: str
    seed: tuple[str, str] | None = None
    steps: tuple[str, str] | None = None
    cfg: tuple[str, str] | None = None
    sampler_name: tuple[str, str] | None = None
    latent: str | None = None
    checkpoint: tuple[str, str] | None = None
    image: tuple[str, str] | None = None  # the LoadImage whose picture the encoder turns into the sampler's latent
    denoise: tuple[str, str] | None = None
    scheduler: tuple[str, str] | None = None
    guidance: tuple[str, str] | None = None  # FluxGuidance on the positive prompt
    shift: tuple[str, str] | None = None  # ModelSamplingSD3 / AuraFlow on the model

    def describe(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Workflow:
    name: str
    graph: dict
    roles: Roles
    defaults: dict = field(default_factory=dict)  # the workflow's own steps/cfg/size/checkpoint
    shipped: bool = False  # one of ours: its graph and values give way to the model's family and recipe

    @property
    def checkpoint(self) -> str | None:
        if self.roles.checkpoint is None:
            return None
        node, name = self.roles.checkpoint
        return self.graph[node]["inputs"].get(name)


def parse_graph(data, name: str = "workflow") -> dict:
    """Validate API format; refuse the UI's saved format with the fix."""
    if isinstance(data, (bytes, str)):
        if len(data) > MAX_WORKFLOW_BYTES:
            raise WorkflowError(f"{name} is larger than {MAX_WORKFLOW_BYTES // 1024 // 1024} MB")
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorkflowError(f"{name} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise WorkflowError(
            f"{name} is in ComfyUI's UI format. In ComfyUI, open it and use Workflow → Export (API) "
            "(enable the dev mode options in the settings if that menu item is missing), then use that file.",
            code="ui_format_workflow",
        )
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data:
        data = data["prompt"]  # the body of a POST /prompt, as some tools save it
    if not isinstance(data, dict) or not data:
        raise WorkflowError(f"{name} is not a ComfyUI API-format workflow (expected an object of nodes)")
    if len(data) > MAX_NODES:
        raise WorkflowError(f"{name} has {len(data)} nodes; at most {MAX_NODES} are accepted")
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise WorkflowError(f"{name}: node {node_id!r} has no class_type; is this an API-format export?")
        if not isinstance(node.get("inputs", {}), dict):
            raise WorkflowError(f"{name}: node {node_id!r} has malformed inputs")
        node.setdefault("inputs", {})
        for input_name, value in node["inputs"].items():
            if is_link(value) and value[0] not in data:
                raise WorkflowError(f"{name}: node {node_id} input '{input_name}' links to missing node {value[0]}")
    return data


class _Graph:
    def __init__(self, graph: dict, name: str):
        self.graph = graph
        self.name = name

    def node(self, node_id: str) -> dict:
        return self.graph[node_id]

    def link(self, node_id: str, input_name: str) -> str | None:
        value = self.graph[node_id]["inputs"].get(input_name)
        return value[0] if is_link(value) else None

    def upstream(self, start: str):
        """Nodes feeding ``start``, nearest first (breadth-first)."""
        seen, frontier = {start}, [start]
        while frontier:
            next_frontier = []
            for node_id in frontier:
                for value in self.graph[node_id]["inputs"].values():
                    if is_link(value) and value[0] not in seen:
                        seen.add(value[0])
                        next_frontier.append(value[0])
                        yield value[0]
            frontier = next_frontier

    def follow(self, start: str | None, accept, through: tuple[str, ...]) -> str | None:
        """Walk links from ``start`` until a node ``accept`` likes, passing only through
        inputs named in ``through`` (conditioning chains, LoRA loaders...)."""
        seen = set()
        while start is not None and start not in seen:
            seen.add(start)
            if accept(self.graph[start]):
                return start
            start = next((self.link(start, name) for name in through if self.link(start, name)), None)
        return None

    def missing(self, role: str, why: str) -> WorkflowError:
        return WorkflowError(f"could not find the {role} in {self.name}: {why}", code="unmappable_workflow")


def _text_input(node: dict) -> str | None:
    return next((name for name in TEXT_INPUTS if isinstance(node["inputs"].get(name), str)), None)


def infer_roles(graph: dict, name: str = "workflow", mapping: dict | None = None) -> Roles:
    g = _Graph(graph, name)
    mapping = mapping or {}
    for role, node_id in mapping.items():
        if role not in ROLE_NAMES:
            raise WorkflowError(f"{name}: unknown role '{role}' in the mapping; roles are {', '.join(ROLE_NAMES)}")
        if str(node_id) not in graph:
            raise WorkflowError(f"{name}: the mapping puts '{role}' on node {node_id}, which is not in the graph")

    outputs = [n for n, node in graph.items() if node["class_type"] in OUTPUT_CLASSES]
    if "output" in mapping:
        output = str(mapping["output"])
    elif outputs:
        output = sorted(outputs, key=lambda n: OUTPUT_CLASSES.index(graph[n]["class_type"]))[0]
    else:
        raise g.missing("output image node", "it has no SaveImage or PreviewImage node")

    def is_sampler(node):
        inputs = node["inputs"]
        return (is_link(inputs.get("positive")) and is_link(inputs.get("negative"))) or is_link(inputs.get("guider"))

    sampler: str | None
    if "sampler" in mapping:
        sampler = str(mapping["sampler"])
    else:
        sampler = next((n for n in g.upstream(output) if is_sampler(graph[n])), None)
        if sampler is None:
            raise g.missing("sampler", "no node upstream of the output has positive and negative inputs")

    # Samplers of the SamplerCustomAdvanced kind take a guider (prompts, cfg) and a noise node (seed).
    guider = g.link(sampler, "guider") or sampler
    conditioning = ("conditioning", "conditioning_to", "conditioning_1", "positive", "negative")

    def encoder_for(role: str) -> tuple[str, str]:
        node_id: str | None
        if role in mapping:
            node_id = str(mapping[role])
        else:
            node_id = g.follow(g.link(guider, role), lambda node: _text_input(node) is not None, conditioning)
            if node_id is None:
                raise g.missing(f"{role} prompt", f"the sampler's '{role}' input does not lead to a text encoder")
        text_input = _text_input(graph[node_id])
        if text_input is None:
            raise g.missing(f"{role} prompt", f"node {node_id} ({graph[node_id]['class_type']}) has no text input")
        return node_id, text_input

    positive = encoder_for("positive")
    negative = encoder_for("negative")
    if positive[0] == negative[0]:
        titled = _by_title(graph)
        if titled:
            positive_text, negative_text = _text_input(graph[titled[0]]), _text_input(graph[titled[1]])
            assert positive_text is not None and negative_text is not None  # _by_title keeps text encoders only
            positive, negative = (titled[0], positive_text), (titled[1], negative_text)
        else:
            raise g.missing("negative prompt", f"positive and negative both lead to node {positive[0]}; "
                            f"add a {name.rsplit('.', 1)[0]}.roles.json mapping or title the nodes 'Positive'/'Negative'")

    def text_on(node_ids, name) -> tuple[str, str] | None:
        return next(((n, name) for n in node_ids if n and isinstance(graph[n]["inputs"].get(name), str)), None)

    def value_on(node_ids, names) -> tuple[str, str] | None:
        for node_id in node_ids:
            if node_id is None:
                continue
            for input_name in names:
                value = graph[node_id]["inputs"].get(input_name)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return node_id, input_name
        return None

    noise = g.link(sampler, "noise")
    scheduler = g.link(sampler, "sigmas")
    seed = value_on([mapping.get("seed") and str(mapping["seed"]), sampler, noise], ("seed", "noise_seed"))
    steps = value_on([mapping.get("steps") and str(mapping["steps"]), sampler, scheduler], ("steps",))
    cfg = value_on([mapping.get("cfg") and str(mapping["cfg"]), sampler, guider], ("cfg",))
    # KSampler names its sampler itself; SamplerCustomAdvanced takes it from a KSamplerSelect node.
    sampler_name = text_on([mapping.get("sampler_name") and str(mapping["sampler_name"]), sampler,
                            g.link(sampler, "sampler")], "sampler_name")
    schedule = text_on([mapping.get("scheduler") and str(mapping["scheduler"]), sampler, scheduler], "scheduler")
    guidance = value_on([str(mapping["guidance"])] if "guidance" in mapping else
                        [g.follow(g.link(guider, "positive") or g.link(guider, "conditioning"),
                                  lambda node: _number(node["inputs"].get("guidance")), conditioning)], ("guidance",))
    shift = value_on([str(mapping["shift"])] if "shift" in mapping else
                     [g.follow(g.link(guider, "model") or g.link(sampler, "model"),
                               lambda node: _number(node["inputs"].get("shift")), ("model",))], ("shift",))

    latent_start = str(mapping["latent"]) if "latent" in mapping else g.link(sampler, "latent_image")
    latent = g.follow(latent_start, lambda node: "width" in node["inputs"] and "height" in node["inputs"],
                      LATENT_LINKS)
    # img2img and inpaint graphs: LoadImage -> VAEEncode (or VAEEncodeForInpaint...) -> the sampler's latent.
    image_node: str | None
    if "image" in mapping:
        image_node = str(mapping["image"])
    else:
        image_node = g.follow(g.link(sampler, "latent_image"), lambda node: isinstance(node["inputs"].get("image"), str),
                              LATENT_LINKS + PIXEL_LINKS)
    image = (image_node, "image") if image_node and isinstance(graph[image_node]["inputs"].get("image"), str) else None
    denoise = value_on([mapping.get("denoise") and str(mapping["denoise"]), sampler, scheduler], ("denoise",))

    checkpoint_node: str | None
    if "checkpoint" in mapping:
        checkpoint_node = str(mapping["checkpoint"])
    else:
        model_start = g.link(guider, "model") or g.link(sampler, "model")
        checkpoint_node = g.follow(model_start, lambda node: "ckpt_name" in node["inputs"], ("model",))
    checkpoint = (checkpoint_node, "ckpt_name") if checkpoint_node and "ckpt_name" in graph[checkpoint_node]["inputs"] else None

    return Roles(sampler=sampler, positive=positive, negative=negative, output=output, seed=seed,
                 steps=steps, cfg=cfg, sampler_name=sampler_name, latent=latent, checkpoint=checkpoint, image=image,
                 denoise=denoise, scheduler=schedule, guidance=guidance, shift=shift)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _by_title(graph: dict) -> tuple[str, str] | None:
    """Text encoders titled 'positive…' and 'negative…' in the UI, when links cannot tell."""
    found: dict[str, str] = {}
    for node_id, node in graph.items():
        title = str(node.get("_meta", {}).get("title", "")).lower()
        if _text_input(node) is None:
            continue
        for role in ("positive", "negative"):
            if re.search(rf"\b{role}\b", title):
                found.setdefault(role, node_id)
    return (found["positive"], found["negative"]) if len(found) == 2 else None


def load_workflow(data, name: str, mapping: dict | None = None, shipped: bool = False) -> Workflow:
    graph = parse_graph(data, name)
    roles = infer_roles(graph, name, mapping)
    defaults = {}
    for key, role in VALUE_ROLES.items():
        spot = getattr(roles, role)
        if spot:
            defaults[key] = graph[spot[0]]["inputs"][spot[1]]
    if roles.latent:
        defaults["width"] = graph[roles.latent]["inputs"]["width"]
        defaults["height"] = graph[roles.latent]["inputs"]["height"]
    workflow = Workflow(name=name, graph=graph, roles=roles, defaults=defaults, shipped=shipped)
    if workflow.checkpoint:
        defaults["checkpoint"] = workflow.checkpoint
    return workflow


# Render settings that go into one input found by a role: setting name -> role.
VALUE_ROLES = {"seed": "seed", "steps": "steps", "cfg": "cfg", "sampler": "sampler_name", "scheduler": "scheduler",
               "guidance": "guidance", "shift": "shift"}


@dataclass
class RenderParams:
    """What to fill into a graph: our prompt texts and the render settings; None keeps the graph's value."""

    prompt_text: str
    negative_text: str = ""
    seed: int | None = None  # None: random
    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    guidance: float | None = None  # Flux's guidance (FluxGuidance)
    shift: float | None = None  # the sampling shift of SD3 and AuraFlow-like models (the recipe's only)
    width: int | None = None
    height: int | None = None
    checkpoint: str | None = None
    denoise: float | None = None  # how much of a picture may change; only with ``image``
    image: str | None = None  # the picture to change, as ComfyUI names it once uploaded ("speech2image/x.png")
    image_data: bytes | None = field(default=None, repr=False)  # that picture's PNG, to upload to the server
    image_name: str | None = None  # our name for it there
    loras: tuple = ()  # ({"name", "strength"}, ...): LoRA loaders put after the model loader
    filename_prefix: str = "speech2image"

    @classmethod
    def from_settings(cls, prompt_text: str, negative_text: str, settings: Settings) -> "RenderParams":
        """Each render setting whose value is its 'keep' value (0, empty, seed -1) stays None."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            knob = KNOBS.get(f.name)
            if knob is not None:
                value = getattr(settings, f.name)
                keep = knob.keep if knob.keep is not None else ""
                values[f.name] = None if value == keep else value
        return cls(prompt_text=prompt_text, negative_text=negative_text, **values)


def fill_picture(graph: dict, roles: Roles, params: RenderParams, used: dict) -> dict:
    """The picture to change and its strength; a sampler without denoise (KSamplerAdvanced) skips
    the first (1 - strength) of its steps instead, which is what denoise means."""
    if roles.image is None:
        raise WorkflowError("this workflow has no picture input (LoadImage) to change", code="not_img2img")
    graph[roles.image[0]]["inputs"][roles.image[1]] = params.image
    if params.denoise is None:
        return {}
    if roles.denoise is not None:
        graph[roles.denoise[0]]["inputs"][roles.denoise[1]] = params.denoise
        return {"denoise": params.denoise}
    sampler = graph[roles.sampler]["inputs"]
    steps = used.get("steps")
    if "start_at_step" in sampler and isinstance(steps, int):
        sampler["start_at_step"] = round(steps * (1 - params.denoise))
        return {"denoise": params.denoise}
    raise WorkflowError("this workflow's sampler has no denoise input, so how much of the picture may change "
                        "cannot be set; use workflows/img2img.json or a KSampler", code="not_img2img")


def fill(workflow: Workflow, params: RenderParams) -> tuple[dict, dict]:
    """A filled copy of the graph and the values actually used (seed, size, ...)."""
    graph = copy.deepcopy(workflow.graph)
    roles = workflow.roles

    def put(spot, value):
        if spot is not None and value is not None:
            graph[spot[0]]["inputs"][spot[1]] = value

    put(roles.positive, params.prompt_text)
    put(roles.negative, params.negative_text)
    seed = params.seed if params.seed is not None and params.seed >= 0 else random.randint(0, MAX_SEED)
    spots = {key: getattr(roles, role) for key, role in VALUE_ROLES.items()}
    spots["checkpoint"] = roles.checkpoint
    if roles.latent is not None:
        spots.update(width=(roles.latent, "width"), height=(roles.latent, "height"))
    used = dict(workflow.defaults)
    for key, spot in spots.items():
        value = seed if key == "seed" else getattr(params, key)
        if spot is not None and value is not None:
            put(spot, value)
            used[key] = value
    if params.image is not None:
        used.update(fill_picture(graph, roles, params, used))
    output_inputs = graph[roles.output]["inputs"]
    if "filename_prefix" in output_inputs:
        output_inputs["filename_prefix"] = params.filename_prefix
    return graph, used


class WorkflowLibrary:
    """Workflows shipped in ``workflows/`` plus those the user uploaded into the data folder."""

    def __init__(self, shipped_dir: Path, uploads_dir: Path):
        self.shipped_dir = Path(shipped_dir)
        self.uploads_dir = Path(uploads_dir)

    def names(self) -> list[str]:
        found: set[str] = set()
        for folder in (self.shipped_dir, self.uploads_dir):
            if folder.is_dir():
                found.update(p.name for p in folder.glob("*.json") if not p.name.endswith(".roles.json"))
        return sorted(found)

    def is_shipped(self, name: str) -> bool:
        """One of ours (not replaced by an upload): drawn the way the model's family wants."""
        return not (self.uploads_dir / name).is_file() and (self.shipped_dir / name).is_file()

    def path(self, name: str) -> Path:
        if not re.fullmatch(r"[\w][\w .()-]{0,100}\.json", name) or name.endswith(".roles.json"):
            raise WorkflowError(f"'{name}' is not a workflow name", code="unknown_workflow")
        for folder in (self.uploads_dir, self.shipped_dir):
            candidate = folder / name
            if candidate.is_file():
                return candidate
        raise WorkflowError(f"there is no workflow named '{name}'; available: {', '.join(self.names())}",
                            code="unknown_workflow")

    def load(self, name: str) -> Workflow:
        path = self.path(name)
        mapping_path = path.with_name(path.name[: -len(".json")] + ".roles.json")
        mapping = None
        if mapping_path.is_file():
            try:
                mapping = json.loads(mapping_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise WorkflowError(f"{mapping_path.name} is not valid JSON: {exc}") from exc
        return load_workflow(path.read_bytes(), name, mapping, shipped=path.parent == self.shipped_dir)

    def save_upload(self, filename: str, data: bytes) -> Workflow:
        """Validate an uploaded workflow (it must map) and keep it in the data folder."""
        stem = re.sub(r"[^\w.() -]", "_", Path(filename or "workflow").stem).strip(" .") or "workflow"
        name = f"{stem[:80]}.json"
        workflow = load_workflow(data, name)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        target = self.uploads_dir / name
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(workflow.graph, indent=1), encoding="utf-8")
        tmp.replace(target)
        return workflow
