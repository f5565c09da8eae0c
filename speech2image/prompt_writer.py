"""Prompt stage: a transcript in, a ``PromptPlan`` (prompt, negative prompt, caption) out.

An LLM writes the prompt when one answers; otherwise (or when it fails) the
deterministic ``OfflineRewriter`` does, and the plan says so. Follow-ups such as
"now make it at night" edit the previous prompt of the same browser session.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Callable

from .errors import BadInput
from .llm import LlmClient, LlmError, Sampling
from .prompt_check import AnswerCheck

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


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

    def to_dict(self) -> dict:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 4)
        return {k: v for k, v in data.items() if v is not None}


def get_preset(name: str | None) -> Preset:
    key = (name or DEFAULT_PRESET).strip().lower()
    if key not in PRESETS:
        raise BadInput(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}", code="bad_preset")
    return PRESETS[key]


# --- the offline rewriter -----------------------------------------------------

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
    """What a prompt the offline rewriter wrote was about, without the style and quality words it added."""
    for preset in PRESETS.values():
        suffix = f", {preset.style_words}, {QUALITY_WORDS}"
        if prompt.endswith(suffix):
            return prompt[: -len(suffix)]
    return prompt


def caption_for(subject: str) -> str:
    subject = subject.rstrip(".!?")
    if _ARTICLE.match(subject):
        return f"Here is {subject[0].lower() + subject[1:]}."
    return f"Here is your picture: {subject}."


class OfflineRewriter:
    """Deterministic rewriter: keeps every content word, adds only style and quality words."""

    def rewrite(self, transcript: str, preset: Preset, previous_subject: str | None = None,
                follow_up: bool = False) -> tuple[str, PromptPlan]:
        """Returns (subject, plan); the subject is kept so a follow-up can extend it. ``follow_up``: the
        transcript changes the previous subject whatever its wording (a change of a chosen picture)."""
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
        prompt = f"{subject}, {preset.style_words}, {QUALITY_WORDS}"
        core = _DETERMINER.sub("", unwanted) if unwanted else None
        plan = PromptPlan(
            prompt=prompt,
            negative_prompt=f"{core}, {DEFAULT_NEGATIVE}" if core else DEFAULT_NEGATIVE,
            caption=caption_for(f"{subject}, without {unwanted}" if unwanted else subject),
            source="offline",
            preset=preset.name,
            elapsed_s=time.perf_counter() - started,
        )
        return subject, plan


# --- per-session history ------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    transcript: str
    subject: str
    prompt: str


class SessionHistory:
    """A few recent turns per browser session; sessions never see each other's turns."""

    def __init__(self, turns_per_session: int = 5, max_sessions: int = 500):
        self.turns_per_session = turns_per_session
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, deque[Turn]] = OrderedDict()
        self._lock = threading.Lock()

    def last(self, session: str | None) -> Turn | None:
        if not session:
            return None
        with self._lock:
            turns = self._sessions.get(session)
            return turns[-1] if turns else None

    def add(self, session: str | None, turn: Turn) -> None:
        if not session:
            return
        with self._lock:
            turns = self._sessions.pop(session, None) or deque(maxlen=self.turns_per_session)
            turns.append(turn)
            self._sessions[session] = turns
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)


# --- the stage ----------------------------------------------------------------


def load_template(name: str) -> Template:
    """Prompt texts live in speech2image/prompts/ with $placeholders (braces are JSON there)."""
    return Template((PROMPTS_DIR / name).read_text(encoding="utf-8"))


class PromptWriter:
    def __init__(self, client: LlmClient | None, history: SessionHistory | None = None):
        self.client = client
        self.history = history or SessionHistory()
        self.offline = OfflineRewriter()
        self.system_template = load_template("system.txt")
        self.refine_template = load_template("refine.txt")
        self.check = AnswerCheck(self.system_template.template, self.refine_template.template)

    def use_client(self, client: LlmClient | None) -> None:
        """Write with another LLM server from the next prompt on (the settings changed)."""
        self.client = client

    def messages(self, transcript: str, preset: Preset, previous: Turn | None) -> list[dict]:
        system = self.system_template.substitute(style_words=preset.style_words, negative_words=DEFAULT_NEGATIVE)
        if previous is not None:
            system += "\n\n" + self.refine_template.substitute(previous_prompt=previous.prompt)
        return [{"role": "system", "content": system}, {"role": "user", "content": transcript}]

    def write(
        self,
        transcript: str,
        preset: str | None = None,
        session: str | None = None,
        model: str | None = None,
        on_token: Callable[[str], None] | None = None,
        can_edit: bool = False,
        base: Turn | None = None,
    ) -> PromptPlan:
        """``can_edit``: the tab has a picture, so the plan says whether to change it (``mode``, ``strength``);
        ``base``: the picture's own turn, when a chosen picture is being changed."""
        transcript = " ".join((transcript or "").split())
        if not transcript:
            raise BadInput("the transcript is empty: record or type a request first", code="empty_transcript")
        chosen = get_preset(preset)
        started = time.perf_counter()
        last = base or self.history.last(session)
        wants_edit = can_edit and edit_cue(transcript)
        follows = base is not None or looks_like_refinement(transcript) or wants_edit
        previous = last if last and follows else None
        subject, offline_plan = self.offline.rewrite(transcript, chosen, previous.subject if previous else None,
                                                     follow_up=base is not None or wants_edit)
        if can_edit or base is not None:
            offline_plan.mode = "edit" if wants_edit or base is not None else "new"
            offline_plan.strength = strength_for(transcript) if offline_plan.mode == "edit" else None

        plan, notice = None, None
        if self.client is None or self.client.off:
            notice = "The LLM is switched off; the prompt was written offline."
        else:
            try:
                fields, model_id, server = self.client.complete_json(
                    self.messages(transcript, chosen, previous), chosen.sampling, model=model, on_token=on_token
                )
            except LlmError as exc:
                log.warning("prompt written offline: %s", exc.message)
                notice = f"Written offline: {exc.message}."
            else:
                plan = self.checked_plan(fields, subject, offline_plan, model_id, server)
                if plan is not offline_plan and offline_plan.mode is not None:
                    plan.mode = fields.get("mode") or offline_plan.mode
                    plan.strength = (clamp_strength(fields.get("strength")) or offline_plan.strength
                                     if plan.mode == "edit" else None)
        if plan is None:
            plan = offline_plan
            plan.notice = notice
        plan.elapsed_s = time.perf_counter() - started
        self.history.add(session, Turn(transcript=transcript, subject=subject, prompt=plan.prompt))
        return plan

    def checked_plan(self, fields: dict, subject: str, offline_plan: PromptPlan, model: str, server: str) -> PromptPlan:
        """The LLM's answer as a plan, once checked against what was asked for (``subject``).

        A prompt that will not do sets the whole answer aside: the offline plan is used and its
        notice says why. A caption or negative prompt that will not do is replaced alone.
        """
        problem = self.check.problem("prompt", fields["prompt"], subject)
        if problem:
            log.info("the LLM's answer was set aside: %s", problem.code)  # the reason may quote the request
            offline_plan.notice = f"The LLM's answer was set aside ({problem.reason}); written offline."
            return offline_plan
        chosen, notes = {}, []
        for field, label, fallback, instead in (
            ("caption", "caption", offline_plan.caption, "the offline caption is used"),
            ("negative_prompt", "negative prompt", DEFAULT_NEGATIVE, "the usual one is used"),
        ):
            value = fields.get(field)
            problem = self.check.problem(field, value, subject) if value else None
            if problem:
                log.info("the LLM's %s was set aside: %s", label, problem.code)
                notes.append(f"The LLM's {label} was set aside ({problem.reason}); {instead}.")
            chosen[field] = fallback if problem or not value else value
        return PromptPlan(prompt=fields["prompt"], negative_prompt=chosen["negative_prompt"], caption=chosen["caption"],
                          source="llm", preset=offline_plan.preset, model=model, server=server,
                          notice=" ".join(notes) or None)
