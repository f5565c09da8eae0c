"""Prompt stage: a transcript in, a ``PromptPlan`` (prompt, negative prompt, caption) out.

An LLM writes the prompt when one answers; otherwise (or when it fails) the
deterministic ``OfflineRewriter`` does, and the plan says so. Follow-ups such as
"now make it at night" edit the previous prompt of the same browser session.

A request in another language than English: the LLM is told the language, and asked for the prompt
in English (image models understand English best) and the caption in the person's language. The
offline rewriter reads English only, so it (and the wording cues of a change, "make it night") reads
Whisper's machine translation of the recording instead; the caption is then the person's own words.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from string import Template
from typing import Callable

from ..errors import BadInput
from ..speech import is_english, language_name
from .check import AnswerCheck
from .llm import LlmClient, LlmError
from .offline import (
    OfflineRewriter,
    clamp_strength,
    edit_cue,
    looks_like_refinement,
    strength_for,
    with_prefix,
)
from .plan import DEFAULT_NEGATIVE, Preset, PromptPlan, Turn, get_preset

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent / "templates"


# --- per-session history ------------------------------------------------------


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
    """Prompt texts live in speech2image/prompt/templates/ with $placeholders (braces are JSON there)."""
    return Template((PROMPTS_DIR / name).read_text(encoding="utf-8"))


def load_dialects() -> dict[str, str]:
    """The lines of templates/dialects.txt (``name: text``): how the prompt is shaped for a kind of model."""
    lines = (PROMPTS_DIR / "dialects.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


class PromptWriter:
    def __init__(self, client: LlmClient | None, history: SessionHistory | None = None):
        self.client = client
        self.history = history or SessionHistory()
        self.offline = OfflineRewriter()
        self.system_template = load_template("system.txt")
        self.refine_template = load_template("refine.txt")
        self.dialects = load_dialects()
        self.language_template = load_template("language.txt")
        self.check = AnswerCheck(self.system_template.template, self.refine_template.template,
                                 self.language_template.template, *self.dialects.values())

    def use_client(self, client: LlmClient | None) -> None:
        """Write with another LLM server from the next prompt on (the settings changed)."""
        self.client = client

    def messages(self, transcript: str, preset: Preset, previous: Turn | None, dialect=None,
                 language: str | None = None, translation: str | None = None) -> list[dict]:
        """The LLM's instructions for ``dialect`` (a ``picture.Dialect``; None: Stable Diffusion's tags), with
        the language paragraph for a request in another language than English; Whisper's machine translation
        goes with the request, as a help."""
        negative = Template(self.dialects["negative"]).substitute(negative_words=DEFAULT_NEGATIVE)
        system = self.system_template.substitute(
            family=dialect.family if dialect else "Stable Diffusion", style_words=preset.style_words,
            form=self.dialects["sentences" if dialect and dialect.sentences else "tags"],
            negative=negative if dialect is None or dialect.negative else self.dialects["no_negative"])
        if previous is not None:
            system += "\n\n" + self.refine_template.substitute(previous_prompt=previous.prompt)
        if language and not is_english(language):
            system += "\n\n" + self.language_template.substitute(language=language_name(language))
            if translation:
                transcript += f"\n\n(Machine translation into English: {translation})"
        return [{"role": "system", "content": system}, {"role": "user", "content": transcript}]

    def write(
        self,
        transcript: str | None,
        preset: str | None = None,
        session: str | None = None,
        model: str | None = None,
        on_token: Callable[[str], None] | None = None,
        can_edit: bool = False,
        base: Turn | None = None,
        dialect=None,
        language: str | None = None,
        translation: str | None = None,
        on_turn: Callable[[Turn], None] | None = None,
        offline: bool = False,
    ) -> PromptPlan:
        """``can_edit``: the tab has a picture, so the plan says whether to change it (``mode``, ``strength``);
        ``base``: the picture's own turn, when a chosen picture is being changed; ``dialect`` (a
        ``picture.Dialect``): what the model the picture is drawn with understands (None: SD 1.5's tags);
        ``language``: the language spoken (None: unknown) and ``translation``: Whisper's English translation;
        ``on_turn``: gets the turn instead of the session's history (a draft's prompt is remembered only if its
        job takes it); ``offline``: the offline rewriter only, with no LLM wait (a live sketch)."""
        transcript = " ".join((transcript or "").split())
        if not transcript:
            raise BadInput("the transcript is empty: record or type a request first", code="empty_transcript")
        chosen = get_preset(preset)
        started = time.perf_counter()
        foreign = language if language and not is_english(language) else None
        translation = " ".join((translation or "").split()) if foreign else ""
        words = translation or transcript  # what the offline rewriter and the wording cues read: English
        last = base or self.history.last(session)
        wants_edit = can_edit and edit_cue(words)
        follows = base is not None or looks_like_refinement(words) or wants_edit
        previous = last if last and follows else None
        subject, offline_plan = self.offline.rewrite(words, chosen, previous.subject if previous else None,
                                                     follow_up=base is not None or wants_edit, dialect=dialect)
        if can_edit or base is not None:
            offline_plan.mode = "edit" if wants_edit or base is not None else "new"
            offline_plan.strength = strength_for(words) if offline_plan.mode == "edit" else None
        if foreign:
            offline_plan.language, offline_plan.caption = foreign, transcript  # their own words, in their language
            offline_plan.words_from = "translation" if translation else None

        plan, notice = None, None
        if offline:
            pass
        elif self.client is None or self.client.off:
            notice = "The LLM is switched off; the prompt was written offline."
        else:
            try:
                fields, model_id, server = self.client.complete_json(
                    self.messages(transcript, chosen, previous, dialect, foreign, translation), chosen.sampling,
                    model=model, on_token=on_token)
            except LlmError as exc:
                log.warning("prompt written offline: %s", exc.message)
                notice = f"Written offline: {exc.message}."
            else:
                # the answer is checked against the English words asked for: none known without a translation
                plan = self.checked_plan(fields, "" if foreign and not translation else subject, offline_plan,
                                         model_id, server, dialect, foreign)
                if plan is not offline_plan and offline_plan.mode is not None:
                    plan.mode = fields.get("mode") or offline_plan.mode
                    plan.strength = (clamp_strength(fields.get("strength")) or offline_plan.strength
                                     if plan.mode == "edit" else None)
        if plan is None:
            plan = offline_plan
            plan.notice = " ".join(filter(None, (notice, offline_note(foreign, translation))))
        plan.family = dialect.family if dialect else None
        plan.elapsed_s = time.perf_counter() - started
        turn = Turn(transcript=transcript, subject=subject, prompt=plan.prompt)
        if on_turn is not None:
            on_turn(turn)
        else:
            self.history.add(session, turn)
        return plan

    def checked_plan(self, fields: dict, subject: str, offline_plan: PromptPlan, model: str, server: str,
                     dialect=None, language: str | None = None) -> PromptPlan:
        """The LLM's answer as a plan, once checked against what was asked for (``subject``).

        A prompt that will not do sets the whole answer aside: the offline plan is used and its
        notice says why. A caption or negative prompt that will not do is replaced alone.
        """
        problem = self.check.problem("prompt", fields["prompt"], subject)
        if problem:
            log.info("the LLM's answer was set aside: %s", problem.code)  # the reason may quote the request
            offline_plan.notice = f"The LLM's answer was set aside ({problem.reason}); written offline."
            return offline_plan
        chosen, notes = {"negative_prompt": ""}, []
        uses_negative = dialect is None or dialect.negative
        for field, label, fallback, instead in (
            ("caption", "caption", offline_plan.caption, "the offline caption is used"),
            *((("negative_prompt", "negative prompt", DEFAULT_NEGATIVE, "the usual one is used"),) if uses_negative else ()),
        ):
            value = fields.get(field)
            # a caption in the person's language cannot be held to the English words
            against = "" if language and field == "caption" else subject
            problem = self.check.problem(field, value, against) if value else None
            if problem:
                log.info("the LLM's %s was set aside: %s", label, problem.code)
                notes.append(f"The LLM's {label} was set aside ({problem.reason}); {instead}.")
            chosen[field] = fallback if problem or not value else value
        prompt, negative = fields["prompt"], chosen["negative_prompt"]
        if dialect is not None:  # the family's own first words, whatever the LLM wrote
            prompt, negative = with_prefix(dialect.prefix, prompt), with_prefix(dialect.negative_prefix, negative)
        return PromptPlan(prompt=prompt, negative_prompt=negative, caption=chosen["caption"],
                          source="llm", preset=offline_plan.preset, model=model, server=server,
                          notice=" ".join(notes) or None, language=language)


def offline_note(language: str | None, translation: str) -> str | None:
    """What the page says of an offline prompt for a request in another language than English."""
    if not language:
        return None
    name = language_name(language)
    if translation:
        return (f"The prompt's words are Whisper's machine translation of your {name} (\u201c{translation}\u201d); "
                f"the caption is what you said.")
    return (f"Your {name} was not translated (there is no LLM, and Whisper translates only recordings it heard "
            f"itself), so the prompt is in {name}; image models understand English best.")
