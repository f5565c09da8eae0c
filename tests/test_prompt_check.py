"""Every LLM answer is checked before it is rendered: LLM -> check -> offline rewriter when it will not do.

The bad answers are the kinds a small model really gave (the first four are quoted from a
user's first hour with SmolLM2; the rest are from SmolLM2-135M through llama.cpp), each
sent by the fake OpenAI-compatible server so the whole path runs.
"""
from __future__ import annotations

import json

import pytest

from speech2image.prompt import (
    DEFAULT_NEGATIVE,
    PRESETS,
    OfflineRewriter,
    PromptWriter,
)
from speech2image.prompt.check import content_words, missing_words
from speech2image.prompt.llm import LlmClient

EXAMPLE_CAPTION = "Here is a red fox sitting in a snowy forest at sunrise."  # from prompt/templates/system.txt


def answer(prompt: str, caption: str = "Here is your picture.", negative: str = "blurry, lowres") -> str:
    return json.dumps({"prompt": prompt, "negative_prompt": negative, "caption": caption})


def write(fake_llm, transcript: str, reply: str, **kwargs):
    fake_llm.behaviour.reply = reply
    return PromptWriter(LlmClient(url=fake_llm.url)).write(transcript, **kwargs)


def offline_prompt(transcript: str) -> str:
    return OfflineRewriter().rewrite(transcript, PRESETS["balanced"])[1].prompt


BAD_ANSWERS = [
    # (what was said, the LLM's prompt, the reason the page is given)
    ("a red fox in the snow", "Please", 'it was too short: "Please"'),
    ("a red fox in the snow", "...", 'it was too short: "..."'),
    ("a cyberpunk samurai standing in the rain", "You have an idea for a story, I'm all ears\u2026",
     "it was chat, not a picture description"),
    ("a bowl of fruit", EXAMPLE_CAPTION, "it repeated the instructions' example instead of your request"),
    ("um can you draw me a cat wearing a red hat", EXAMPLE_CAPTION,  # shares 'red' with the request
     "it repeated the instructions' example instead of your request"),
    ("a fox in the snow", "I'm sorry, I can't help with that request.", "it was a refusal, not a picture"),
    ("a fox in the snow", "Sure! Here's a lovely picture with soft light and vivid colors",
     "it was chat, not a picture description"),
    ("can you make a pixel art knight with a shield", "What do you want?", "it was chat, not a picture description"),
    ("can you make a pixel art knight with a shield", "Can you draw a knight with a shield?",
     "it was chat, not a picture description"),
    ("a fox in the snow", "a cozy living room with a fireplace, warm light, highly detailed",
     "it did not mention 'fox' or 'snow'"),
    ("I'd love a photo of a hummingbird drinking from a purple flower", "Mirror, a hummingbird.",
     "it did not mention 'photo', 'drinking' or 'purple'"),
    ("um um a tiny house made of candy in a dark forest", "1.2, 159, 8-30, 6:47 AM",
     "it did not mention 'tiny', 'house' or 'made'"),
    ("a big old oak tree in a field with sheep and a sunset",
     "big old oak tree with sheep in a field, and sunset. Mention only what the person asked for.",
     "it repeated the instructions it was given"),
]


@pytest.mark.parametrize("transcript,prompt,reason", BAD_ANSWERS)
def test_bad_answer_falls_back_to_the_offline_rewriter(fake_llm, transcript, prompt, reason):
    plan = write(fake_llm, transcript, answer(prompt))
    assert len(fake_llm.requests) == 1  # the LLM was asked and did answer
    assert plan.source == "offline"
    assert plan.model is None
    assert plan.prompt == offline_prompt(transcript)
    assert plan.notice == f"The LLM's answer was set aside ({reason}); written offline."


GOOD_ANSWERS = [
    ("um can you draw me a cat wearing a red hat",
     answer("a cat wearing a red hat, soft lighting, highly detailed", "Here is a cat in a red hat.")),
    # the request the example caption was written for: repeating it is right here
    ("a red fox sitting in a snowy forest at sunrise",
     answer("a red fox sitting in a snowy forest at sunrise, golden light, highly detailed", EXAMPLE_CAPTION)),
    # other forms of the words, and the style words the instructions suggest
    ("a fox in the snow", answer("foxes in snowy fields, soft natural light, centered composition, highly detailed, "
                                 "sharp focus", "Here are foxes in the snow.")),
    # words that would be chat, when the person said them
    ("a wooden sign that says I love you, please",
     answer("a wooden sign that says I love you, warm light", "Here is a sign that says I love you.")),
    ("I want to see two dragons fighting above a volcano",
     answer("two dragons fighting above an erupting volcano, dramatic lighting", "Two dragons fight over a volcano.",
            "blurry, extra limbs")),
    ("un chat noir sur un toit de Paris la nuit", answer("un chat noir sur un toit de Paris la nuit, cinematic",
                                                         "Voici un chat noir sur un toit de Paris.")),
]


@pytest.mark.parametrize("transcript,reply", GOOD_ANSWERS)
def test_good_answer_is_kept(fake_llm, transcript, reply):
    plan = write(fake_llm, transcript, reply)
    sent = json.loads(reply)
    assert plan.source == "llm", plan.notice
    assert plan.notice is None
    assert (plan.prompt, plan.caption, plan.negative_prompt) == (sent["prompt"], sent["caption"], sent["negative_prompt"])


@pytest.mark.parametrize("caption,reason", [
    ("[", 'it was too short: "["'),
    ("\"", 'it was too short: """'),
    ("Here is a bowl of ramen, I'm going to make it with a boiled egg.", "it was chat, not a picture description"),
    ("A red bicycle lying on a sidewalk at night. The person leaned their head against it and looked up at them in "
     "awe. They said that they were so proud and smiled brightly. They took a step forward and walked towards the "
     "wall with pride.", "it was too long: 45 words"),
    (EXAMPLE_CAPTION, "it repeated the instructions' example instead of your request"),
    ("The light of day is shining bright in the dreams of sailors.", "it did not mention 'bowl', 'ramen' or 'boiled'"),
])
def test_bad_caption_alone_is_replaced(fake_llm, caption, reason):
    transcript = "a bowl of ramen with a boiled egg"
    plan = write(fake_llm, transcript, answer("a bowl of ramen with a boiled egg, watercolor", caption))
    assert plan.source == "llm"
    assert plan.prompt == "a bowl of ramen with a boiled egg, watercolor"
    assert plan.caption == "Here is a bowl of ramen with a boiled egg."
    assert plan.negative_prompt == "blurry, lowres"
    assert plan.notice == f"The LLM's caption was set aside ({reason}); the offline caption is used."


@pytest.mark.parametrize("negative,reason", [
    ("Penguins wearing sunglasses on a beach.", "it named 'penguin', 'wearing' and 'sunglasses', which you asked for"),
    ("You can't eat the food I made for you.", "it was a refusal, not a picture"),
    ("What's your name?", "it was chat, not a picture description"),
    ("*", 'it was too short: "*"'),
])
def test_negative_prompt_that_fights_the_request_is_replaced(fake_llm, negative, reason):
    transcript = "so like, a penguin wearing sunglasses on a beach"
    plan = write(fake_llm, transcript, answer("a penguin wearing sunglasses on a beach, sunny", "Here is a penguin in sunglasses.",
                                              negative))
    assert plan.source == "llm" and plan.caption == "Here is a penguin in sunglasses."
    assert plan.negative_prompt == DEFAULT_NEGATIVE
    assert plan.notice == f"The LLM's negative prompt was set aside ({reason}); the usual one is used."


def test_follow_up_is_checked_against_the_whole_picture(fake_llm):
    writer = PromptWriter(LlmClient(url=fake_llm.url))
    fake_llm.behaviour.reply = answer("a lighthouse on a cliff, soft light", "Here is a lighthouse on a cliff.")
    writer.write("a lighthouse on a cliff", session="alice")
    writer.write("a lighthouse on a cliff", session="bob")
    # the edited prompt keeps the lighthouse and adds the night: kept
    fake_llm.behaviour.reply = answer("a lighthouse on a cliff at night, moonlight", "Here is the lighthouse at night.")
    edited = writer.write("now make it at night", session="alice")
    assert edited.source == "llm" and edited.notice is None
    # an answer that forgot the picture being edited: set aside, and the offline edit is used
    fake_llm.behaviour.reply = answer("a bowl of fruit, soft light", "Here is a bowl of fruit.")
    wrong = writer.write("now make it at night", session="bob")
    assert wrong.source == "offline"
    assert wrong.prompt.startswith("a lighthouse on a cliff, at night,")
    assert wrong.notice == ("The LLM's answer was set aside (it did not mention 'lighthouse', 'cliff' or 'night'); "
                            "written offline.")


def test_the_reason_stays_out_of_the_log_above_debug(fake_llm, caplog):
    caplog.set_level("INFO", logger="speech2image")
    plan = write(fake_llm, "a secret garden with a red door", answer("a cozy kitchen, soft light"))
    assert plan.source == "offline" and "'secret'" in plan.notice
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "off_topic" in logged
    assert "secret" not in logged and "garden" not in logged  # what people said appears only at debug level


def test_content_words_are_what_remains_of_the_request():
    assert content_words("a cat wearing a red hat") == ["cat", "wearing", "red", "hat"]
    assert content_words("what time is it") == ["time"]
    assert missing_words(["fox", "snowy", "puppy", "horse"], "Foxes in the snow with puppies and a horse") == []
