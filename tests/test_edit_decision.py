"""New picture or a change of the one in view: the decision for a table of utterances, as the offline
rewriter's cues make it, as an LLM's structured answer makes it (through a fake OpenAI-compatible
server), and as the page's switch or a chosen picture overrides it."""
from __future__ import annotations

import json

import pytest

from speech2image.config import Settings
from speech2image.jobs.edits import decide
from speech2image.jobs.job import JobRequest
from speech2image.prompt import PromptPlan, PromptWriter, Turn
from speech2image.prompt.llm import LlmClient

BARN = "a red barn in a field"

# (what was said next, mode, strength) in a tab whose last picture is BARN
OFFLINE = [
    ("now make it at night", "edit", 0.55),
    ("make the barn blue", "edit", 0.55),
    ("add a full moon", "edit", 0.55),
    ("remove the fence", "edit", 0.55),
    ("change the sky to pink", "edit", 0.55),
    ("a white horse instead", "edit", 0.75),
    ("more clouds", "edit", 0.55),
    ("less fog please", "edit", 0.55),
    ("okay now make it a little darker", "edit", 0.35),
    ("make it completely snowy", "edit", 0.75),
    ("and turn it into a watercolor", "edit", 0.55),
    ("a cat sleeping on a windowsill", "new", None),
    ("draw me a lighthouse in a storm", "new", None),
    ("this time a castle on a hill", "new", None),
    ("make me a logo of a whale", "new", None),
    ("nowhere to be seen, a lonely road", "new", None),
    ("get rid of the fence", "edit", 0.55),
    ("no more fog", "edit", 0.55),
]

# (what was said next, the prompt's subject, what the negative prompt starts with) in a tab whose last
# picture is BARN + ", a wooden fence": a removed thing must not be in the prompt, where it would be drawn.
CHANGE_WORDING = [
    ("add a full moon", f"{BARN}, a wooden fence, a full moon", "blurry"),
    ("now put a scarecrow in the field", f"{BARN}, a wooden fence, a scarecrow in the field", "blurry"),
    ("remove the fence", BARN, "fence, blurry"),
    ("make it without the fence", BARN, "fence, blurry"),
    ("get rid of all the fences", BARN, "fences, blurry"),
    ("no more fog", f"{BARN}, a wooden fence", "fog, blurry"),
    ("make the barn blue", f"{BARN}, a wooden fence, the barn blue", "blurry"),
]


def tab_with_barn(client=None) -> PromptWriter:
    writer = PromptWriter(client)
    writer.write(BARN, session="tab")
    return writer


@pytest.mark.parametrize("said, mode, strength", OFFLINE)
def test_offline_cues_decide_in_a_tab_with_a_picture(said, mode, strength):
    plan = tab_with_barn().write(said, session="tab", can_edit=True)
    assert (plan.mode, plan.strength) == (mode, strength)
    if mode == "edit":
        assert plan.prompt.startswith(BARN)  # a change keeps what the picture was of


@pytest.mark.parametrize("said, subject, negative", CHANGE_WORDING)
def test_offline_change_wording_adds_to_the_prompt_or_keeps_out(said, subject, negative):
    writer = PromptWriter(None)
    writer.write(f"{BARN}, a wooden fence", session="tab")
    plan = writer.write(said, session="tab", can_edit=True)
    assert plan.mode == "edit"
    assert plan.prompt.split(", natural colors")[0] == subject
    assert plan.negative_prompt.startswith(negative)
    assert ("without" in plan.caption) == (negative != "blurry")  # the caption says what went


@pytest.mark.parametrize("said", ["now make it at night", "a cat sleeping on a windowsill"])
def test_without_a_picture_there_is_nothing_to_decide(said):
    plan = tab_with_barn().write(said, session="tab", can_edit=False)
    assert plan.mode is None and plan.strength is None


def test_a_chosen_picture_is_changed_whatever_the_wording():
    base = Turn(transcript="a blue lake", subject="a blue lake", prompt="a blue lake, soft light")
    plan = PromptWriter(None).write("with snow on the shore", session="other", base=base)
    assert plan.mode == "edit" and plan.prompt.startswith("a blue lake, with snow on the shore")


def answer(**extra) -> str:
    return json.dumps({"prompt": "a red barn in a field at night, moonlight, highly detailed",
                       "negative_prompt": "blurry", "caption": "Here is the red barn at night.", **extra})


@pytest.mark.parametrize("said, reply, mode, strength", [
    ("now make it at night", answer(mode="edit", strength=0.4), "edit", 0.4),
    ("now make it at night", answer(mode="new"), "new", None),  # the LLM may say it is a new picture
    ("now make it at night", answer(mode="edit", strength=1.7), "edit", 0.9),  # kept within 0.2-0.9
    ("now make it at night", answer(mode="edit", strength="lots"), "edit", 0.55),  # not a number: the cue's
    ("now make it a little darker at night", answer(), "edit", 0.35),  # no mode in the answer: the cues decide
    ("now make it at night", answer(mode="sideways"), "edit", 0.55),
    ("now make it at night", '{"prompt": "Please", "caption": "ok"}', "edit", 0.55),  # set aside: offline plan
])
def test_the_llms_structured_answer_decides(fake_llm, said, reply, mode, strength):
    writer = tab_with_barn(LlmClient(fake_llm.url))
    fake_llm.behaviour.reply = reply
    plan = writer.write(said, session="tab", can_edit=True)
    assert (plan.mode, plan.strength) == (mode, strength)
    schema = fake_llm.requests[-1]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["mode"]["enum"] == ["new", "edit"]
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert '"mode": "edit"' in system and "strength" in system  # asked only with a picture to change


def plan(mode=None, strength=None, source="offline") -> PromptPlan:
    return PromptPlan(prompt="p", negative_prompt="", caption="c", source=source, mode=mode, strength=strength)


@pytest.mark.parametrize("request_fields, plan_fields, denoise, expected", [
    ({}, {"mode": "edit", "strength": 0.4}, 0.0, {"mode": "new", "by": "no_picture", "parent": None, "strength": None}),
    ({"last_picture": "p1"}, {"mode": "edit", "strength": 0.4}, 0.0,
     {"mode": "edit", "by": "offline", "parent": "p1", "strength": 0.4}),
    ({"last_picture": "p1"}, {"mode": "edit", "source": "llm"}, 0.0,
     {"mode": "edit", "by": "llm", "parent": "p1", "strength": 0.55}),
    ({"last_picture": "p1"}, {"mode": "new"}, 0.0, {"mode": "new", "by": "offline", "parent": "p1", "strength": None}),
    ({"last_picture": "p1"}, {}, 0.0, {"mode": "new", "by": "offline", "parent": "p1", "strength": None}),
    # the page's switch overrides the wording, either way
    ({"last_picture": "p1", "mode": "new"}, {"mode": "edit", "strength": 0.4}, 0.0,
     {"mode": "new", "by": "page", "parent": "p1", "strength": None}),
    ({"last_picture": "p1", "mode": "edit"}, {"mode": "new"}, 0.0,
     {"mode": "edit", "by": "page", "parent": "p1", "strength": 0.55}),
    # a chosen picture (the gallery's Change this picture), and the job's own denoise over the plan's
    ({"edit_of": "p0", "last_picture": "p1"}, {"mode": "new"}, 0.8,
     {"mode": "edit", "by": "request", "parent": "p0", "strength": 0.8}),
    # the switch on a new picture names the picture it would have changed, with mode edit
    ({"edit_of": "p1", "mode": "edit", "last_picture": "p1"}, {"mode": "new"}, 0.0,
     {"mode": "edit", "by": "page", "parent": "p1", "strength": 0.55}),
    ({"last_picture": "p1"}, {"mode": "edit", "strength": 0.4}, 0.25,
     {"mode": "edit", "by": "offline", "parent": "p1", "strength": 0.25}),
])
def test_decision_table(request_fields, plan_fields, denoise, expected):
    request = JobRequest(session="tab", **request_fields)
    assert decide(request, plan(**plan_fields), Settings(denoise=denoise)) == expected
