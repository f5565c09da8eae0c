"""Which family a model file belongs to, and the evidence that says so.

In order, the first that answers: the person's own choice for this file, the file's safetensors
metadata (``modelspec.architecture``, ``ss_base_model_version``...), the tensor names and shapes of its
header (the key tests ComfyUI's own model detection uses; read without loading any weights), its
name, the folder it came from, and else unknown (drawn as SD 1.5, and said so). The variant
(turbo, inpaint...) is looked for the same way. Everything here is pure but ``read_header``.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .families import DEFAULT_FAMILY, DIFFUSION_FOLDERS, FAMILIES, VARIANTS, Recipe, label, recipe_for, text_to_image

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
UNET = "model.diffusion_model."

# (family, pattern) on a lowercased name or title: the first that matches decides. SDXL-based
# families come before "xl", the families with their own names before everything.
NAME_FAMILIES = (
    ("chroma", r"chroma"), ("flux", r"flux"), ("qwen-image", r"qwen[_-]?image"), ("z-image", r"z[_-]?image"),
    ("hidream", r"hidream"), ("lumina2", r"lumina"), ("sd3", r"sd[_-]?3|stable[_-]?diffusion[_-]?3"),
    ("pony", r"pony|pdxl"), ("illustrious", r"illustrious|noob|ilxl"), ("playground", r"playground"),
    ("sdxl", r"xl"), ("sd2", r"sd[_-]?2|v2[-_]1|768[-_]v"), ("sd15", r"sd[_-]?1[._-]?5|v1[-_]5|1\.5"),
)
NAME_VARIANTS = (
    ("inpaint", r"inpaint|[_-]fill(?![a-z])"), ("refiner", r"refiner"), ("turbo", r"turbo"),
    ("lightning", r"lightning"), ("hyper", r"hyper(?!real)"), ("lcm", r"lcm"), ("schnell", r"schnell"),
    ("vpred", r"v[_-]?pred"),
)
# modelspec.architecture and ss_base_model_version words -> family (first match).
METADATA_FAMILIES = (
    ("chroma", r"chroma"), ("flux", r"flux"), ("qwen-image", r"qwen"), ("z-image", r"z[_-]?image"),
    ("hidream", r"hidream"), ("lumina2", r"lumina"), ("sd3", r"stable-diffusion-3|sd3|sd_3"),
    ("sdxl", r"stable-diffusion-xl|sdxl"), ("sd2", r"stable-diffusion-v2|sd_v2|sd_2|v2-"),
    ("sd15", r"stable-diffusion-v1|sd_v1|sd_1|v1-"),
)


@dataclass(frozen=True)
class ModelInfo:
    """One model file of a ComfyUI: what it is, and why we think so (``evidence`` is shown to the person)."""

    name: str
    folder: str  # checkpoints, diffusion_models, unet or loras
    family: str
    variant: str | None
    evidence: str
    source: str  # choice, metadata, header, name, folder or unknown
    resolution: tuple[int, int] | None = None  # its own native size, from its metadata
    triggers: tuple[str, ...] = ()  # a LoRA's trigger words

    @property
    def label(self) -> str:
        return label(self.family, self.variant)

    @property
    def recipe(self) -> Recipe:
        return recipe_for(self.family, self.variant, self.resolution)

    @property
    def diffusion_model(self) -> bool:
        """A bare diffusion model (UNETLoader), whose text encoders and VAE are separate files."""
        return self.folder in DIFFUSION_FOLDERS

    def describe(self) -> dict:
        data = {"name": self.name, "folder": self.folder, "family": self.family, "variant": self.variant,
                "label": self.label, "evidence": self.evidence, "source": self.source}
        if self.folder == "loras":
            return {**data, "triggers": list(self.triggers)}
        return {**data, "recipe": self.recipe.describe(), "text_to_image": text_to_image(self.variant)}

    def chosen(self, choice: dict | None) -> "ModelInfo":
        """The same file as the person said it is (their choice wins over any evidence)."""
        if not choice or choice.get("family") not in FAMILIES:
            return self
        variant = choice.get("variant") if choice.get("variant") in VARIANTS else None
        return dataclasses.replace(self, family=choice["family"], variant=variant, evidence="your choice",
                                   source="choice")


def read_header(path: Path) -> tuple[dict, dict[str, list[int]]] | None:
    """A safetensors file's metadata and its tensors' shapes, from the header only; None when it is
    not a safetensors file (or cannot be read)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(8)
            if len(start) < 8:
                return None
            (length,) = struct.unpack("<Q", start)
            if not 2 <= length <= MAX_HEADER_BYTES:
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    metadata = header.pop("__metadata__", None)
    shapes = {k: v.get("shape", []) for k, v in header.items() if isinstance(v, dict)}
    return (metadata if isinstance(metadata, dict) else {}), shapes


def _first(table, text: str) -> str | None:
    return next((name for name, pattern in table if re.search(pattern, text)), None)


def _stem(name: str) -> str:
    return re.sub(r"\.(safetensors|sft|ckpt|pt|pth|bin|gguf)$", "", name.replace("\\", "/").lower())


def by_name(name: str) -> tuple[str | None, str | None, str]:
    """(family, variant, the words that said so) from a file name: "juggernautXL_lightning" -> (sdxl, lightning)."""
    stem = _stem(name)
    words = [m.group(0) for table in (NAME_FAMILIES, NAME_VARIANTS) for _, p in table if (m := re.search(p, stem))]
    return _first(NAME_FAMILIES, stem), _first(NAME_VARIANTS, stem), ", ".join(dict.fromkeys(words))


def _resolution(value) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d{3,4})\s*[x×*,]\s*(\d{3,4})\s*", str(value or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def by_metadata(metadata: dict) -> tuple[str | None, str | None, str]:
    """(family, variant, evidence) from a file's ``__metadata__`` (kohya's ss_* and Stability's modelspec.*)."""
    for key in ("modelspec.architecture", "ss_base_model_version"):
        value = str(metadata.get(key) or "").lower()
        found = _first(METADATA_FAMILIES, value)
        if found:
            variant = _first(NAME_VARIANTS, value)
            if str(metadata.get("modelspec.prediction_type", "")).lower() in ("v", "v_prediction"):
                variant = variant or "vpred"
            title = str(metadata.get("modelspec.title") or "").lower()
            if found == "sdxl":  # an SDXL-based family says so in its title, not its architecture
                found = next((f for f in ("pony", "illustrious", "playground") if f == _first(NAME_FAMILIES, title)), found)
            return found, variant or _first(NAME_VARIANTS, title), f"metadata {key} = {metadata.get(key)}"
    return None, None, ""


def triggers_of(metadata: dict, most: int = 3) -> tuple[str, ...]:
    """A LoRA's trigger words: its ``modelspec.trigger_phrase``, else the tags it was trained on most."""
    phrase = str(metadata.get("modelspec.trigger_phrase") or "").strip()
    if phrase:
        return tuple(p.strip() for p in phrase.split(",") if p.strip())[:most]
    try:
        frequency = json.loads(metadata.get("ss_tag_frequency") or "{}")
    except (TypeError, ValueError):
        return ()
    counts: Counter = Counter()
    for tags in (frequency.values() if isinstance(frequency, dict) else ()):
        if isinstance(tags, dict):
            counts.update({str(tag).strip(): n for tag, n in tags.items() if isinstance(n, (int, float))})
    return tuple(tag for tag, _ in counts.most_common(most) if tag)


def _width(shapes: dict, key: str, axis: int) -> int | None:
    shape = shapes.get(key)
    return shape[axis] if isinstance(shape, list) and len(shape) > axis else None


def by_tensors(shapes: dict[str, list[int]]) -> tuple[str | None, str | None, str]:
    """(family, variant, evidence) from tensor names and shapes, the way ComfyUI tells models apart."""
    prefix = UNET if any(k.startswith(UNET) for k in shapes) else ""
    has = lambda key: prefix + key in shapes  # noqa: E731
    if has("joint_blocks.0.context_block.attn.qkv.weight"):
        return "sd3", None, "header joint_blocks (MMDiT)"
    if has("double_blocks.0.img_attn.norm.key_norm.scale"):
        if has("distilled_guidance_layer.in_proj.weight") or any("distilled_guidance_layer" in k for k in shapes):
            return "chroma", None, "header double_blocks with distilled_guidance_layer"
        inpaint = (_width(shapes, prefix + "img_in.weight", 1) or 64) > 64
        variant = "inpaint" if inpaint else (None if has("guidance_in.in_layer.weight") else "schnell")
        return "flux", variant, "header double_blocks key_norm" + (", guidance_in" if variant is None else "")
    if has("caption_projection.0.linear.weight"):
        return "hidream", None, "header caption_projection"
    if has("cap_embedder.1.weight"):
        z_image = _width(shapes, prefix + "cap_embedder.1.weight", 1) == 2560
        return ("z-image" if z_image else "lumina2"), None, "header cap_embedder"
    if has("txt_norm.weight"):
        return "qwen-image", None, "header txt_norm"
    if has("input_blocks.0.0.weight"):
        return _unet(shapes, prefix)
    return _lora(shapes)


def _unet(shapes: dict, prefix: str) -> tuple[str | None, str | None, str]:
    """The UNet families: SD 1.5 / 2.x by their cross-attention width, SDXL by its size embedding."""
    variant = "inpaint" if _width(shapes, prefix + "input_blocks.0.0.weight", 1) == 9 else None
    if "v_pred" in shapes:
        variant = variant or "vpred"
    label_emb = _width(shapes, prefix + "label_emb.0.0.weight", 1)
    if label_emb == 2816 or any(k.startswith("conditioner.embedders.1") for k in shapes):
        found = "playground" if "edm_mean" in shapes else "sdxl"
        return found, variant, f"header label_emb width {label_emb or 2816}" + (", edm_mean" if found == "playground" else "")
    if label_emb == 2560:
        return "sdxl", "refiner", "header label_emb width 2560 (refiner)"
    context = next((_width(shapes, prefix + f"input_blocks.{i}.1.transformer_blocks.0.attn2.to_k.weight", 1)
                    for i in (1, 4) if prefix + f"input_blocks.{i}.1.transformer_blocks.0.attn2.to_k.weight" in shapes), None)
    if context == 1024:
        return "sd2", variant, "header cross-attention width 1024"
    if context == 768:
        return "sd15", variant, "header cross-attention width 768"
    return None, variant, ""


def _lora(shapes: dict) -> tuple[str | None, str | None, str]:
    """A LoRA's base, from the layers it changes (kohya's and diffusers' key names)."""
    keys = " ".join(list(shapes)[:4000])
    if "double_blocks" in keys or "single_transformer_blocks" in keys:
        return "flux", None, "header LoRA of double_blocks"
    if "joint_blocks" in keys:
        return "sd3", None, "header LoRA of joint_blocks"
    if "lora_te2_" in keys or "text_encoder_2" in keys:
        return "sdxl", None, "header LoRA of a second text encoder"
    attn = next((shape for key, shape in shapes.items() if "attn2_to_k.lora_down" in key), None)
    if attn and len(attn) > 1 and attn[1] in (768, 1024):
        return ("sd15" if attn[1] == 768 else "sd2"), None, f"header LoRA cross-attention width {attn[1]}"
    return None, None, ""


def detect(name: str, folder: str, metadata: dict | None = None, shapes: dict | None = None) -> ModelInfo:
    """The family and variant of one file from what is known about it, with the evidence (the person's
    own choice is laid over it with ``ModelInfo.chosen``)."""
    metadata = metadata or {}
    known = functools.partial(ModelInfo, name=name, folder=folder,
                              resolution=_resolution(metadata.get("modelspec.resolution")),
                              triggers=triggers_of(metadata) if folder == "loras" else ())
    name_family, name_variant, words = by_name(name)
    for source, (found, variant, evidence) in (("metadata", by_metadata(metadata)),
                                              ("header", by_tensors(shapes) if shapes else (None, None, ""))):
        if found:
            # the name refines what the file says: a Pony file is SDXL underneath
            if name_family not in (None, found) and FAMILIES[name_family].arch == found == FAMILIES[found].arch:
                found, evidence = name_family, f"{evidence}; name: {words}"
            return known(family=found, variant=variant or name_variant, evidence=evidence, source=source)
    if name_family:
        return known(family=name_family, variant=name_variant, evidence=f"name: {words}", source="name")
    if folder in DIFFUSION_FOLDERS:
        return known(family="flux", variant=name_variant, source="folder",
                     evidence=f"folder models/{folder} (most diffusion models there are Flux.1)")
    return known(family=DEFAULT_FAMILY, variant=name_variant, source="unknown",
                 evidence=f"unknown: drawn as {FAMILIES[DEFAULT_FAMILY].label}; say what it is under Settings → Models")
