"""The offline rewriter keeps every content word and invents nothing."""
from __future__ import annotations

import re

import pytest

from speech2image.errors import BadInput
from speech2image.prompt import (
    DEFAULT_NEGATIVE,
    PRESETS,
    QUALITY_WORDS,
    OfflineRewriter,
    PromptWriter,
    caption_for,
    clean_request,
)

from .support.data import CASES

# Words a person may say around the request that the rewriter is allowed to drop.
DROPPABLE = set(
    """um umm uh uhh er erm hmm ah so well okay ok hey hi hello alright right now please thanks thank you
    can could would will draw paint make create generate show render give sketch design imagine me us
    i i'd id like love want wanna need to see have get let's lets let picture image pic of an a the for
    if possible was thinking think maybe how what about something know mean""".split()
)

ALLOWED_ADDITIONS = set(re.findall(r"[a-z]+", " ".join(p.style_words for p in PRESETS.values()) + " " + QUALITY_WORDS))


def words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def test_table_has_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("transcript", CASES)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_content_words_survive_and_nothing_is_invented(transcript, preset):
    _, plan = OfflineRewriter().rewrite(transcript, PRESETS[preset])
    prompt_words = words(plan.prompt)
    said = set(words(transcript))
    content = [w for w in words(transcript) if w not in DROPPABLE]
    missing = [w for w in content if w not in prompt_words]
    assert not missing, (transcript, plan.prompt)
    invented = [w for w in prompt_words if w not in said and w not in ALLOWED_ADDITIONS]
    assert not invented, (transcript, plan.prompt)
    caption_invented = [w for w in words(plan.caption) if w not in said and w not in {"here", "is", "your", "picture"}]
    assert not caption_invented, plan.caption
    assert plan.source == "offline"
    assert plan.negative_prompt == DEFAULT_NEGATIVE
    assert PRESETS[preset].style_words in plan.prompt


@pytest.mark.parametrize(
    "transcript,subject",
    [
        ("um can you draw me a cat wearing a red hat", "a cat wearing a red hat"),
        ("uh, could you please make a picture of a lighthouse on a rocky coast during a storm",
         "a lighthouse on a rocky coast during a storm"),
        ("I'd like to see an astronaut riding a horse on the moon, please", "an astronaut riding a horse on the moon"),
        ("hey, um, show me a futuristic city at night with neon signs and flying cars, thanks",
         "a futuristic city at night with neon signs and flying cars"),
        ("um um a tiny house made of candy in a dark forest", "a tiny house made of candy in a dark forest"),
        ("okay so I was thinking maybe a big old oak tree", "a big old oak tree"),
        ("generate an image of a medieval castle on a hill", "a medieval castle on a hill"),
        ("so like, a penguin, uh, a penguin wearing sunglasses", "a penguin wearing sunglasses"),
    ],
)
def test_fillers_and_request_phrases_are_dropped(transcript, subject):
    assert clean_request(transcript) == subject


def test_captions_read_as_a_sentence():
    assert caption_for("a cat wearing a red hat") == "Here is a cat wearing a red hat."
    assert caption_for("Mount Fuji in pink") == "Here is your picture: Mount Fuji in pink."


def test_nothing_to_draw_is_a_clear_error():
    with pytest.raises(BadInput, match="nothing to draw"):
        OfflineRewriter().rewrite("um, can you draw me, uh, please", PRESETS["balanced"])


def test_rewriter_is_deterministic():
    rewriter = OfflineRewriter()
    first = rewriter.rewrite(CASES[9], PRESETS["creative"])[1]
    second = rewriter.rewrite(CASES[9], PRESETS["creative"])[1]
    assert (first.prompt, first.caption) == (second.prompt, second.caption)


def test_offline_follow_up_extends_previous_subject_per_session():
    writer = PromptWriter(client=None)
    writer.write("a lighthouse on a cliff", session="alice")
    edited = writer.write("now make it at night", session="alice")
    assert edited.prompt.startswith("a lighthouse on a cliff, at night,")
    assert edited.caption == "Here is a lighthouse on a cliff, at night."
    other = writer.write("now make it at night", session="bob")
    assert "lighthouse" not in other.prompt
