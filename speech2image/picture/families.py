"""The model families a ComfyUI user meets, as data: one row per family, one per variant.

A ``Family`` says what its files need (the graph's loader, text encoders, VAE, latent node and
model patches, all stock ComfyUI nodes), how it is best drawn (its ``Recipe``) and how its prompt is
written (its ``Dialect``). A ``Variant`` (turbo, lightning, LCM...) changes the recipe, never the
graph. The graph builder, image-to-image and the prompt writer read these rows; nothing else
branches on a family's name. The numbers are the usual starting points of well-known clients
(ComfyUI's own examples, Krita AI Diffusion, SwarmUI) for each family.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# ~1 megapixel buckets the SDXL generation and later models were trained on (width, height).
MEGAPIXEL_SIZES = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344))
SD15_SIZES = ((512, 512), (512, 768), (768, 512), (640, 448), (448, 640))
SD2_SIZES = ((768, 768), (896, 640), (640, 896), (1024, 576), (576, 1024))
QWEN_SIZES = ((1328, 1328), (1472, 1140), (1140, 1472), (1664, 928), (928, 1664))
# ComfyUI's folders of models that draw, checkpoints first; a diffusion model lives in either of the others.
MODEL_FOLDERS = ("checkpoints", "diffusion_models", "unet")
DIFFUSION_FOLDERS = ("diffusion_models", "unet")


@dataclass(frozen=True)
class Recipe:
    """How a family is drawn when the settings leave a value open."""

    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    guidance: float | None = None  # FluxGuidance's value, for the families that take one
    shift: float | None = None  # the sampling shift of ModelSamplingSD3 / ModelSamplingAuraFlow
    sizes: tuple[tuple[int, int], ...] = ()  # the shapes it was trained on, square first

    def describe(self) -> dict:
        data = dataclasses.asdict(self)
        data["sizes"] = [list(size) for size in self.sizes]
        return data


@dataclass(frozen=True)
class Encoder:
    """One text encoder file a diffusion model needs: the loader input it goes to, what the person
    calls it, patterns (lowercase regular expressions) its file name matches, and an example name."""

    input: str
    label: str
    patterns: tuple[str, ...]
    example: str


@dataclass(frozen=True)
class Family:
    name: str
    label: str
    arch: str  # what LoRAs must have been made for (Pony and Illustrious are SDXL underneath)
    recipe: Recipe
    sentences: bool = False  # the prompt is plain sentences (T5 / LLM text encoders), not tags
    negative: bool = True  # a negative prompt is used (when CFG is above 1)
    prefix: str = ""  # words every prompt of this family starts with
    negative_prefix: str = ""
    latent: str = "EmptyLatentImage"
    patch: str | None = None  # ModelSamplingSD3 or ModelSamplingAuraFlow, given the recipe's shift
    guidance_node: bool = False  # FluxGuidance on the positive conditioning
    clip_loader: str = "CLIPLoader"  # for a diffusion model file: the node that loads its text encoders
    clip_type: str = "stable_diffusion"
    encoders: tuple[Encoder, ...] = ()
    vae: tuple[str, ...] = ()  # patterns of its VAE's file name, best first
    vae_example: str = "ae.safetensors"
    distilled: bool = False  # its recipe is already a few-step one: the speed variants leave it alone
    # What a sampler step costs against SD 1.5's at the same size, roughly its denoiser's size (0.86 B):
    # the CPU warning scales a step timed on one family to another by it.
    step_cost: float = 1.0

    def describe(self) -> dict:
        return {"name": self.name, "label": self.label, "arch": self.arch, "sentences": self.sentences}


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    changes: dict  # the recipe's values it replaces
    text_to_image: bool = True  # False: offered only for changing a picture (inpaint, refiner)


CLIP_L = Encoder("clip_name1", "CLIP-L", (r"clip[_-]?l(?![a-z])",), "clip_l.safetensors")
CLIP_G = Encoder("clip_name2", "CLIP-G", (r"clip[_-]?g(?![a-z])",), "clip_g.safetensors")
T5 = Encoder("clip_name2", "T5-XXL", (r"t5[_-]?xxl", r"t5"), "t5xxl_fp8_e4m3fn.safetensors")
FLUX_VAE = (r"^ae\.", r"flux")

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("sd15", "SD 1.5", "sd15", Recipe(512, 512, 20, 7.0, "euler", "normal", sizes=SD15_SIZES),
           encoders=(dataclasses.replace(CLIP_L, input="clip_name"),),
           vae=(r"ft[_-]?mse", r"sd[_-]?1", r"vae[_-]?ft"), vae_example="vae-ft-mse-840000-ema-pruned.safetensors"),
    Family("sd2", "SD 2.x", "sd2", Recipe(768, 768, 25, 7.0, "dpmpp_2m", "karras", sizes=SD2_SIZES),
           encoders=(Encoder("clip_name", "OpenCLIP-H", (r"open[_-]?clip", r"clip[_-]?h"), "open_clip_h.safetensors"),),
           vae=(r"ft[_-]?mse", r"sd[_-]?2"), vae_example="vae-ft-mse-840000-ema-pruned.safetensors"),
    Family("sdxl", "SDXL", "sdxl", Recipe(1024, 1024, 25, 6.0, "dpmpp_2m", "karras", sizes=MEGAPIXEL_SIZES),
           clip_loader="DualCLIPLoader", clip_type="sdxl", encoders=(CLIP_L, CLIP_G),
           vae=(r"sdxl", r"xl"), vae_example="sdxl_vae.safetensors", step_cost=3),
    Family("pony", "Pony (SDXL)", "sdxl",
           Recipe(1024, 1024, 25, 7.0, "euler_ancestral", "normal", sizes=MEGAPIXEL_SIZES),
           prefix="score_9, score_8_up, score_7_up", negative_prefix="score_6, score_5, score_4",
           clip_loader="DualCLIPLoader", clip_type="sdxl", encoders=(CLIP_L, CLIP_G),
           vae=(r"sdxl", r"xl"), vae_example="sdxl_vae.safetensors", step_cost=3),
    Family("illustrious", "Illustrious / NoobAI (SDXL)", "sdxl",
           Recipe(1024, 1024, 28, 5.5, "euler_ancestral", "normal", sizes=MEGAPIXEL_SIZES),
           prefix="masterpiece, best quality", negative_prefix="worst quality, low quality",
           clip_loader="DualCLIPLoader", clip_type="sdxl", encoders=(CLIP_L, CLIP_G),
           vae=(r"sdxl", r"xl"), vae_example="sdxl_vae.safetensors", step_cost=3),
    Family("playground", "Playground v2.5 (SDXL)", "sdxl",
           Recipe(1024, 1024, 25, 3.0, "dpmpp_2m", "karras", sizes=MEGAPIXEL_SIZES),
           clip_loader="DualCLIPLoader", clip_type="sdxl", encoders=(CLIP_L, CLIP_G),
           vae=(r"sdxl", r"xl"), vae_example="sdxl_vae.safetensors", step_cost=3),
    Family("sd3", "SD 3 / 3.5", "sd3",
           Recipe(1024, 1024, 28, 4.5, "dpmpp_2m", "sgm_uniform", shift=3.0, sizes=MEGAPIXEL_SIZES),
           sentences=True, negative=False, latent="EmptySD3LatentImage", patch="ModelSamplingSD3",
           clip_loader="TripleCLIPLoader", clip_type="",
           encoders=(CLIP_L, CLIP_G, dataclasses.replace(T5, input="clip_name3")),
           vae=(r"sd[_-]?3",), vae_example="sd3_vae.safetensors", step_cost=6),
    Family("flux", "Flux.1", "flux",
           Recipe(1024, 1024, 20, 1.0, "euler", "simple", guidance=3.5, sizes=MEGAPIXEL_SIZES),
           sentences=True, negative=False, latent="EmptySD3LatentImage", guidance_node=True,
           clip_loader="DualCLIPLoader", clip_type="flux", encoders=(CLIP_L, T5), vae=FLUX_VAE, step_cost=14),
    Family("chroma", "Chroma", "chroma",
           Recipe(1024, 1024, 26, 4.0, "euler", "simple", sizes=MEGAPIXEL_SIZES),
           sentences=True, latent="EmptySD3LatentImage", clip_type="chroma",
           encoders=(dataclasses.replace(T5, input="clip_name"),), vae=FLUX_VAE, step_cost=10),
    Family("qwen-image", "Qwen-Image", "qwen_image",
           Recipe(1328, 1328, 20, 2.5, "euler", "simple", shift=3.1, sizes=QWEN_SIZES),
           sentences=True, negative=False, latent="EmptySD3LatentImage", patch="ModelSamplingAuraFlow",
           clip_type="qwen_image",
           encoders=(Encoder("clip_name", "Qwen2.5-VL 7B", (r"qwen[_-]?2\.?5[_-]?vl",), "qwen_2.5_vl_7b_fp8_scaled.safetensors"),),
           vae=(r"qwen",), vae_example="qwen_image_vae.safetensors", step_cost=23),
    Family("z-image", "Z-Image", "z_image",
           Recipe(1024, 1024, 9, 1.0, "euler", "simple", shift=3.0, sizes=MEGAPIXEL_SIZES),
           sentences=True, negative=False, latent="EmptySD3LatentImage", patch="ModelSamplingAuraFlow",
           clip_type="lumina2",
           encoders=(Encoder("clip_name", "Qwen3 4B", (r"qwen[_-]?3",), "qwen_3_4b.safetensors"),), vae=FLUX_VAE,
           distilled=True, step_cost=7),
    Family("hidream", "HiDream-I1", "hidream",
           Recipe(1024, 1024, 30, 5.0, "uni_pc", "simple", shift=3.0, sizes=MEGAPIXEL_SIZES),
           sentences=True, negative=False, latent="EmptySD3LatentImage", patch="ModelSamplingSD3",
           clip_loader="QuadrupleCLIPLoader", clip_type="",
           encoders=(CLIP_L, CLIP_G, dataclasses.replace(T5, input="clip_name3"),
                     Encoder("clip_name4", "Llama 3.1 8B", (r"llama",), "llama_3.1_8b_instruct_fp8_scaled.safetensors")),
           vae=FLUX_VAE, step_cost=20),
    Family("lumina2", "Lumina Image 2.0", "lumina2",
           Recipe(1024, 1024, 25, 4.0, "res_multistep", "simple", shift=6.0, sizes=MEGAPIXEL_SIZES),
           sentences=True, latent="EmptySD3LatentImage", patch="ModelSamplingAuraFlow", clip_type="lumina2",
           prefix="You are an assistant designed to generate superior images with the superior degree of "
                  "image-text alignment based on textual prompts or user prompts. <Prompt Start>",
           encoders=(Encoder("clip_name", "Gemma 2 2B", (r"gemma",), "gemma_2_2b_fp16.safetensors"),), vae=FLUX_VAE, step_cost=3),
)}
DEFAULT_FAMILY = "sd15"  # what a model nothing can be told about is drawn as (and said so)


@dataclass(frozen=True)
class Sketch:
    """A live sketch's recipe, from the model's own: each side scaled (to a multiple of 64, at least
    ``min_side``, never over the picture's own) and at most ``steps`` steps; the sampler, CFG and shape stay the model's."""

    scale: float = 0.5
    min_side: int = 256
    steps: int = 4

    def side(self, value: int) -> int:
        """A side of the sketch: scaled, but never under ``min_side`` unless the picture itself is smaller."""
        return min(value, max(self.min_side, int(value * self.scale) // 64 * 64))


SKETCH = Sketch()

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("turbo", "Turbo", {"steps": 4, "cfg": 1.0, "sampler": "euler_ancestral", "scheduler": "sgm_uniform"}),
    Variant("lightning", "Lightning", {"steps": 6, "cfg": 1.0, "sampler": "euler", "scheduler": "sgm_uniform"}),
    Variant("hyper", "Hyper", {"steps": 6, "cfg": 1.0, "sampler": "euler", "scheduler": "sgm_uniform"}),
    Variant("lcm", "LCM", {"steps": 6, "cfg": 1.5, "sampler": "lcm", "scheduler": "sgm_uniform"}),
    Variant("schnell", "Schnell", {"steps": 4, "cfg": 1.0}),
    Variant("vpred", "v-prediction", {"cfg": 5.0, "sampler": "euler", "scheduler": "normal"}),
    Variant("inpaint", "Inpainting", {}, text_to_image=False),
    Variant("refiner", "Refiner", {}, text_to_image=False),
)}


def family(name: str | None) -> Family:
    return FAMILIES.get(name or DEFAULT_FAMILY, FAMILIES[DEFAULT_FAMILY])


def recipe_for(family_name: str | None, variant: str | None = None,
               resolution: tuple[int, int] | None = None) -> Recipe:
    """The family's recipe with its variant's changes; ``resolution`` (the file's own, from its
    metadata) moves the native size."""
    recipe = family(family_name).recipe
    if variant in VARIANTS and not (family(family_name).distilled and VARIANTS[variant].text_to_image):
        recipe = dataclasses.replace(recipe, **VARIANTS[variant].changes)
    if resolution:
        recipe = dataclasses.replace(recipe, width=resolution[0], height=resolution[1])
    return recipe


def label(family_name: str | None, variant: str | None = None) -> str:
    """"SDXL", "SDXL Turbo": what the page and the notes call a model's kind."""
    text = family(family_name).label
    return f"{text} {VARIANTS[variant].label}" if variant in VARIANTS else text


@dataclass(frozen=True)
class Dialect:
    """How the prompt writer writes for a model: in tags or sentences, with or without a negative
    prompt, starting with the family's own words. ``family`` names it for the LLM."""

    family: str = "Stable Diffusion 1.5"
    sentences: bool = False
    negative: bool = True
    prefix: str = ""
    negative_prefix: str = ""


def uses_negative(family_name: str | None, cfg: float) -> bool:
    """A negative prompt only acts where the family takes one and CFG is above 1 (at 1 ComfyUI skips it)."""
    return family(family_name).negative and cfg > 1.0


def dialect_for(family_name: str | None, variant: str | None = None, cfg: float | None = None) -> Dialect:
    """The prompt dialect of a family drawn at ``cfg`` (None: its recipe's)."""
    row = family(family_name)
    cfg = recipe_for(family_name, variant).cfg if cfg is None else cfg
    negative = uses_negative(family_name, cfg)
    return Dialect(family=label(family_name, variant), sentences=row.sentences, negative=negative,
                   prefix=row.prefix, negative_prefix=row.negative_prefix if negative else "")


def text_to_image(variant: str | None) -> bool:
    """Whether a model of this variant may draw a new picture (an inpaint or refiner model may not)."""
    return VARIANTS[variant].text_to_image if variant in VARIANTS else True
