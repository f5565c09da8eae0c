"""What the prompt stage answers: a ``PromptPlan`` (prompt, negative prompt, caption), the presets
that shape it, and a ``Turn`` of a session's conversation."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import BadInput
from .llm import Sampling


@dataclass(frozen=True)
class Preset:
    name: str
    sampling: Sampling
    style_words: str


PRESETS = {
    p.name: p
    for p in (
        Preset("creative", Sampling(0.9, 0.9), "vivid colors, imaginative, dramatic lighting, dynamic composition"),
        Preset("balanced", Sampling(0.7, 0.8), "natural colors, soft lighting, balanced composition"),
        Preset("focused", Sampling(0.3, 0.7), "clean composition, even lighting, sharp focus"),
        Preset("precise", Sampling(0.1, 0.5), "faithful rendering, neutral lighting, centered composition"),
    )
}
DEFAULT_PRESET = "balanced"
QUALITY_WORDS = "highly detailed, high quality"
DEFAULT_NEGATIVE = (
    "blurry, low quality, lowres, jpeg artifacts, deformed, bad anatomy, watermark, signature, text, cropped"
)


@dataclass
class PromptPlan:
    prompt: str
    negative_prompt: str
    caption: str
    source: str  # "llm" or "offline"
    preset: str = DEFAULT_PRESET
    model: str | None = None
    server: str | None = None
    notice: str | None = None  # why the plan was written offline, for the page
    elapsed_s: float = 0.0
    mode: str | None = None  # in a tab with a picture: "edit" (change it) or "new"; None: no picture to change
    strength: float | None = None  # for an edit: how much may change (img2img denoise)
    family: str | None = None  # the kind of model the prompt was written for ("Flux.1"), when known
    language: str | None = None  # the language the person spoke, when it is not English: the caption's
    words_from: str | None = None  # "translation": the prompt's words are Whisper's machine translation

    def to_dict(self) -> dict:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 4)
        return {k: v for k, v in data.items() if v is not None}


def get_preset(name: str | None) -> Preset:
    key = (name or DEFAULT_PRESET).strip().lower()
    if key not in PRESETS:
        raise BadInput(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}", code="bad_preset")
    return PRESETS[key]


@dataclass(frozen=True)
class Turn:
    transcript: str
    subject: str
    prompt: str
