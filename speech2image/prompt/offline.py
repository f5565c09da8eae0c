"""The offline rewriter: a deterministic prompt from the transcript's own words (no LLM), and the
wording cues that decide whether a request changes the picture in view, and how much."""
from __future__ import annotations

import re
import time

from ..errors import BadInput
from .plan import DEFAULT_NEGATIVE, PRESETS, QUALITY_WORDS, Preset, PromptPlan

_FILLER = r"(?:u+m+|u+h+m*|e+r+m*|h+m+|a+h+|mm+|uh-huh)"
_LEADING = [
    rf"{_FILLER}\b",
    r"(?:hey|hi|hello|okay|ok|so|well|alright|all right|right|now then)\b",
    r"(?:please)\b",
    r"(?:can|could|would|will) you(?: please)?(?: (?:draw|paint|make|create|generate|show|render|give|sketch|design|imagine|picture|do))?(?: me| us)?\b",
    r"(?:i'?d|i would) (?:like|love)(?: to see| to have| to get)?(?: you to (?:draw|paint|make|create|generate|show|render))?(?: me)?\b",
    r"(?:i want|i wanna|i need)(?: to see| to have| to get)?(?: you to (?:draw|paint|make|create|generate|show|render))?(?: me)?\b",
    r"(?:let'?s|let me) (?:see|have|get|make|draw)\b",
    r"(?:i was thinking|i'?m thinking|i think|maybe|how about|what about|something like|like)(?: of| about)?\b",
    r"(?:draw|paint|make|create|generate|show|render|give|sketch|design|imagine)(?: me| us)?\b",
    r"(?:an? )?(?:picture|image|pic)(?: of)?\b",
]
_TRAILING = [
    r"please",
    r"thanks?(?: you)?",
    r"for me",
    r"if you can",
    r"if possible",
    r"okay",
]
_FILLER_ANYWHERE = [rf"\b{_FILLER}\b", r"\byou know\b", r"\bi mean\b", r"(?<=,) like(?=,)", r"\bplease\b"]
_REFINEMENT = re.compile(
    r"^(?:now|and now|okay now|but|instead|also|and|this time|same(?: thing| picture)? but|"
    r"make it|make them|make the|change|turn it|add|remove|without)\b",
    re.IGNORECASE,
)
_REFINEMENT_LEAD = re.compile(
    r"^(?:(?:and|okay|but) )?(?:now |this time |instead |also )*(?:(?:same(?: thing| picture)? but) )?"
    r"(?:(?:can you |could you |please )?(?:make|turn) (?:it|them|this)(?: into)? )?",
    re.IGNORECASE,
)
_ARTICLE = re.compile(r"^(?:a|an|the|some|two|three|four|five|many|several|my|our|his|her|their)\b", re.IGNORECASE)


def _strip_patterns(text: str, patterns: list[str], at: str) -> str:
    changed = True
    while changed and text:
        changed = False
        for pattern in patterns:
            regex = rf"^(?:{pattern})[\s,.!?;:]*" if at == "start" else rf"[\s,.!?;:]*\b(?:{pattern})[\s,.!?;:]*$"
            new = re.sub(regex, "", text, flags=re.IGNORECASE).strip()
            if new != text:
                text, changed = new, True
    return text


def clean_request(transcript: str) -> str:
    """What the person asked to see, without fillers and request phrasing; content words untouched."""
    text = " ".join(transcript.split())
    for pattern in _FILLER_ANYWHERE:
        text = re.sub(rf"[\s,]*{pattern}[\s,]*", " ", text, flags=re.IGNORECASE)
    text = " ".join(text.split())
    # spoken restarts: "a penguin, uh, a penguin wearing" -> "a penguin wearing"
    text = re.sub(r"\b((?:[\w'-]+\s+){0,2}[\w'-]+)(?:[\s,]+\1\b)+", r"\1", text, flags=re.IGNORECASE)
    text = _strip_patterns(text, _LEADING, "start")
    text = _strip_patterns(text, _TRAILING, "end")
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"([,;:])\1+", r"\1", text)
    return text.strip(" ,.;:!?-")


def looks_like_refinement(transcript: str) -> bool:
    return bool(_REFINEMENT.match(" ".join(transcript.split())))


# Wording that asks to change the picture in view rather than for a new one ("make it at night",
# "make the barn blue", "now with snow", "add a moon", "a dog instead", "more clouds").
_EDIT_CUE = re.compile(
    r"^(?:(?:and|okay|ok|so|but|also|then|please|now|can you|could you|would you)[\s,]+)*"
    r"(?:now|make (?:it|them|this|that|the|him|her)|turn (?:it|them|this|the)|add|remove|change|instead|more|less|"
    r"put|give (?:it|them|the)|without|get rid of|take (?:away|out)|no more|same (?:thing|picture|one) but)\b|"
    r"\binstead\b",
    re.IGNORECASE,
)
_SMALL_CHANGE = re.compile(r"\b(?:a (?:little|bit|touch|tad)|slightly|subtly|subtle|a little bit|just a|barely)\b",
                           re.IGNORECASE)
_BIG_CHANGE = re.compile(r"\b(?:completely|totally|entirely|drastically|radically|very different|instead)\b",
                         re.IGNORECASE)
DEFAULT_STRENGTH = 0.55
STRENGTH_RANGE = (0.2, 0.9)  # what the wording or the LLM may ask for; a job's own denoise may go further


def edit_cue(transcript: str) -> bool:
    return bool(_EDIT_CUE.search(" ".join(transcript.split())))


def strength_for(transcript: str) -> float:
    """How much a change may alter, from its wording: a little 0.35, completely 0.75, else 0.55."""
    if _SMALL_CHANGE.search(transcript):
        return 0.35
    if _BIG_CHANGE.search(transcript):
        return 0.75
    return DEFAULT_STRENGTH


def clamp_strength(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return round(min(STRENGTH_RANGE[1], max(STRENGTH_RANGE[0], float(value))), 2)


# How a change reads in a prompt: "add a full moon" draws a full moon; "remove the fence" must not put
# "fence" in the prompt (Stable Diffusion would draw one), so it goes to the negative prompt instead.
_ADDING = re.compile(r"^(?:add|put|include)\s+(?:in\s+)?", re.IGNORECASE)
_REMOVING = re.compile(r"^(?:remove|without|get rid of|take (?:away|out)|delete|erase|no more|no)\s+(.+)$",
                       re.IGNORECASE)
_DETERMINER = re.compile(r"^(?:all (?:of )?the|the|a|an|some|any|that|those|these|this)\s+", re.IGNORECASE)


def split_change(change: str) -> tuple[str, str | None]:
    """(words the prompt gains, what was asked to go): "add a full moon" -> ("a full moon", None),
    "remove the fence" -> ("", "the fence")."""
    removing = _REMOVING.match(change)
    if removing:
        return "", removing.group(1)
    return _ADDING.sub("", change), None


def without(subject: str, unwanted: str) -> str:
    """The subject without the parts a change removed (never its first, what the picture is of)."""
    stem = re.escape(_DETERMINER.sub("", unwanted).strip().removesuffix("s"))  # "the fences" also takes "a fence"
    first, *rest = subject.split(", ")
    return ", ".join([first, *(part for part in rest if not re.search(rf"\b{stem}(?:s|es)?\b", part, re.IGNORECASE))])


def subject_of(prompt: str) -> str:
    """What a prompt the offline rewriter wrote was about, without the words it added around it (a family's
    prefix, the style and quality words, or the sentence that says them)."""
    prompt = _PREFIXES.sub("", prompt)
    for preset in PRESETS.values():
        for suffix in (f", {preset.style_words}, {QUALITY_WORDS}", f". {style_sentence(preset)}"):
            if prompt.endswith(suffix):
                prompt = prompt[: -len(suffix)]
                return prompt[:1].lower() + prompt[1:] if suffix.startswith(".") else prompt
    return prompt


# The words a family's prompts start with (Pony's scores, Illustrious' quality tags), as the writer puts them.
_PREFIXES = re.compile(r"^(?:.*?<Prompt Start>\s*)?(?:(?:score_\d(?:_up)?|masterpiece|best quality)(?:, )?)*")


def style_sentence(preset: Preset) -> str:
    """A preset's style words as a sentence, for the models that read sentences rather than tags."""
    words = [w.strip() for w in preset.style_words.split(",")]
    listed = ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else words[0]
    return f"{listed[:1].upper()}{listed[1:]}; {QUALITY_WORDS.replace(', ', ' and ')}."


def in_dialect(subject: str, preset: Preset, dialect, unwanted: str | None = None) -> tuple[str, str]:
    """(prompt, negative prompt) for ``subject`` the way the model reads them: tags with the style and quality
    words, or sentences; the family's own first words; no negative prompt where the model uses none."""
    if dialect is not None and dialect.sentences:
        prompt = f"{subject[:1].upper()}{subject[1:]}. {style_sentence(preset)}"
    else:
        prompt = f"{subject}, {preset.style_words}, {QUALITY_WORDS}"
    negative = f"{unwanted}, {DEFAULT_NEGATIVE}" if unwanted else DEFAULT_NEGATIVE
    if dialect is None:
        return prompt, negative
    return with_prefix(dialect.prefix, prompt), with_prefix(dialect.negative_prefix, negative) if dialect.negative else ""


def with_prefix(prefix: str, text: str) -> str:
    """``text`` starting with ``prefix`` (once)."""
    if not prefix or text.lower().startswith(prefix.lower()):
        return text
    return f"{prefix} {text}" if prefix.endswith(">") else f"{prefix}, {text}"


def caption_for(subject: str) -> str:
    subject = subject.rstrip(".!?")
    if _ARTICLE.match(subject):
        return f"Here is {subject[0].lower() + subject[1:]}."
    return f"Here is your picture: {subject}."


class OfflineRewriter:
    """Deterministic rewriter: keeps every content word, adds only style and quality words."""

    def rewrite(self, transcript: str, preset: Preset, previous_subject: str | None = None,
                follow_up: bool = False, dialect=None) -> tuple[str, PromptPlan]:
        """Returns (subject, plan); the subject is kept so a follow-up can extend it. ``follow_up``: the
        transcript changes the previous subject whatever its wording (a change of a chosen picture);
        ``dialect`` (a ``picture.Dialect``): how the model reads prompts, None for SD 1.5's tags."""
        started = time.perf_counter()
        unwanted = None
        if previous_subject and (follow_up or looks_like_refinement(transcript)):
            change, unwanted = split_change(clean_request(_REFINEMENT_LEAD.sub("", " ".join(transcript.split()))))
            base = without(previous_subject, unwanted) if unwanted else previous_subject
            subject = f"{base}, {change}" if change else base
        else:
            subject = clean_request(transcript)
        if not subject:
            raise BadInput("there is nothing to draw in that request: say what you want to see", code="empty_request")
        prompt, negative = in_dialect(subject, preset, dialect, _DETERMINER.sub("", unwanted) if unwanted else None)
        plan = PromptPlan(
            prompt=prompt,
            negative_prompt=negative,
            caption=caption_for(f"{subject}, without {unwanted}" if unwanted else subject),
            source="offline",
            preset=preset.name,
            elapsed_s=time.perf_counter() - started,
        )
        return subject, plan
