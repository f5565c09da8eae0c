"""Is the LLM's answer about what the person asked for? Checked before anything is rendered.

A small model answers with a parseable JSON object that can still be nonsense: "Please",
"...", "You have an idea for a story, I'm all ears", a refusal, or the system prompt's own
example caption for a different request. ``AnswerCheck`` finds these, field by field, and
says why in words the page can show. What the person asked for is the offline rewriter's
subject (``clean_request``: fillers and request phrasing already gone); its content words
are that subject's words without the function words below.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Function words, and the request words clean_request leaves inside a sentence: never content.
STOP_WORDS = frozenset("""
a an the some any this that these those it its it's is are was were be been being am do does did
have has had will would could should can may might must shall and or but nor so if then than as
of in on at to for with without by from into onto over under above below near behind beside
between through across around about up down out off after before during while there here what
which who whom whose where when why how very really just too also only not no yes like um uh er
hmm please thanks okay ok well know mean want wanna need see draw paint make create generate show
render picture image pic i me my we us our you your he him his she her they them their
""".split())

# Words that show an answer talks to someone instead of describing a picture.
_FIRST_PERSON = frozenset("i i'm i'd i'll i've me my mine we we're we'll let's us our".split())
_SECOND_PERSON = frozenset("you you're you'd you'll you've your yours".split())
_TALK = _FIRST_PERSON | _SECOND_PERSON | {"please"}
_OPENER = re.compile(r"^\W*(?:sure|certainly|of course|absolutely|okay|ok|great|hello|hi|hey|no problem)\b",
                     re.IGNORECASE)
_REFUSAL = re.compile(r"\b(?:sorry|apologi[sz]e|can'?t|cannot|can not|unable|not able to|won'?t|as an ai|"
                      r"language model|inappropriate|not appropriate)\b", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"$]+)"')
_RUN = 5  # this many words in a row from the instructions (outside their examples) is an echo
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

MIN_KEPT = 0.5  # an answer must mention at least this share of what was asked for
MAX_CAPTION_WORDS = 40  # the caption is spoken: one short sentence


def words(text: str) -> list[str]:
    return _WORD.findall((text or "").lower().replace("\u2019", "'"))


def stem(word: str) -> str:
    """Enough to match 'foxes' with 'fox' and 'snowy' with 'snow'; not a linguist's stemmer."""
    word = word.removesuffix("'s")
    for suffix in ("ies", "es", "s", "ing", "ed", "y"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word.removesuffix("e") if len(word) > 3 else word


def content_words(subject: str) -> list[str]:
    """The words of what was asked for that a picture must show, in order, each once."""
    seen, found = set(), []
    for word in words(subject):
        if word not in STOP_WORDS and stem(word) not in seen:
            seen.add(stem(word))
            found.append(word)
    return found


def missing_words(content: list[str], text: str) -> list[str]:
    """Which of ``content`` the text does not mention (any form: 'foxes' mentions 'fox')."""
    present = {stem(w) for w in words(text)}
    return [w for w in content if stem(w) not in present]


@dataclass(frozen=True)
class Problem:
    """Why a field of the answer was set aside: ``code`` for logs, ``reason`` for the page."""

    code: str
    reason: str


@dataclass(frozen=True)
class _Rules:
    min_words: int
    max_words: int | None
    chat_words: frozenset
    questions_are_chat: bool
    must_mention: bool  # the prompt and caption describe what was asked for
    must_not_mention: bool  # the negative prompt must not fight it


RULES = {
    "prompt": _Rules(2, None, _TALK, True, True, False),
    "caption": _Rules(2, MAX_CAPTION_WORDS, _FIRST_PERSON, False, True, False),  # "Here is your picture" is fine
    "negative_prompt": _Rules(1, None, _TALK, True, False, True),
}


def _runs(found: list[str]) -> set[tuple[str, ...]]:
    return {tuple(found[i:i + _RUN]) for i in range(len(found) - _RUN + 1)}


def _listed(items: list[str], joiner: str = "or") -> str:
    quoted = [f"'{w}'" for w in items[:3]]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" {joiner} " + quoted[-1]


class AnswerCheck:
    """Built from the prompt texts the LLM was given, so an echo of their examples is recognised."""

    def __init__(self, *instructions: str):
        self.examples = []  # content words of each sample sentence in the instructions
        self.sentences = set()  # runs of words from the instructions' own sentences
        for text in instructions:
            parts = _QUOTED.split(text)  # outside, "quoted", outside, ...
            for part in parts[0::2]:
                self.sentences |= _runs(words(part))
            for quoted in parts[1::2]:
                found = content_words(quoted)
                if len(found) >= 4:  # a sample picture, not a style phrase such as "soft natural light"
                    self.examples.append(found)

    def problem(self, field: str, text: str, subject: str) -> Problem | None:
        """What is wrong with one field of the answer for this request, or None when it will do."""
        rules = RULES[field]
        found = words(text)
        said = set(words(subject))
        content = content_words(subject)
        if len(found) < rules.min_words:
            return Problem("too_short", f'it was too short: "{" ".join(text.split())[:40]}"')
        if rules.max_words and len(found) > rules.max_words:
            return Problem("too_long", f"it was too long: {len(found)} words")
        if _REFUSAL.search(text) and not _REFUSAL.search(subject):
            return Problem("refusal", "it was a refusal, not a picture")
        for example in self.examples:
            borrowed = missing_words(example, subject)
            if len(borrowed) - len(missing_words(borrowed, text)) >= max(2, len(example) / 2):
                return Problem("echo", "it repeated the instructions' example instead of your request")
        if (_runs(found) & self.sentences) - _runs(words(subject)):
            return Problem("echo", "it repeated the instructions it was given")
        chat = (set(found) & rules.chat_words) - said
        if chat or (_OPENER.search(text) and not _OPENER.search(subject)) \
                or (rules.questions_are_chat and "?" in text and "?" not in subject):
            return Problem("chat", "it was chat, not a picture description")
        if rules.must_mention and content:
            missing = missing_words(content, text)
            if len(content) - len(missing) < MIN_KEPT * len(content):
                return Problem("off_topic", f"it did not mention {_listed(missing)}")
        if rules.must_not_mention:
            named = [w for w in content if w not in missing_words(content, text)]
            if named:
                return Problem("fights_request", f"it named {_listed(named, 'and')}, which you asked for")
        return None
