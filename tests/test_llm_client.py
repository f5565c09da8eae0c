"""The LLM client and prompt writer against a fake OpenAI-compatible server on 127.0.0.1."""
from __future__ import annotations

import json
import time

import pytest

from speech2image.prompt import DEFAULT_NEGATIVE, PromptWriter
from speech2image.prompt.llm import (
    LlmClient,
    LlmError,
    find_json_object,
    parse_prompt_fields,
)

from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import Behaviour, FakeLlmServer, dead_url

GOOD = {"prompt": "a cat wearing a red hat, soft light", "negative_prompt": "blurry", "caption": "A cat in a red hat."}


@pytest.fixture
def fake(fake_llm):
    return fake_llm


def writer_for(url: str, **client_args) -> PromptWriter:
    return PromptWriter(LlmClient(url=url, **client_args))


def test_json_schema_answer_is_used(fake):
    plan = writer_for(fake.url).write("um can you draw me a cat wearing a red hat")
    assert plan.source == "llm"
    assert plan.model == "fake-model-7b"  # the first listed
    assert plan.server == fake.url
    assert plan.prompt.startswith("a cat wearing a red hat")
    assert plan.caption == "Here is a cat in a red hat."
    request = fake.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"]["required"] == ["prompt", "negative_prompt", "caption"]
    assert request["temperature"] == 0.7 and request["top_p"] == 0.8  # balanced
    assert request["messages"][1] == {"role": "user", "content": "um can you draw me a cat wearing a red hat"}
    assert "Never add subjects" in request["messages"][0]["content"]


def test_presets_set_sampling(fake):
    writer = writer_for(fake.url)
    for preset, (temperature, top_p) in {"creative": (0.9, 0.9), "focused": (0.3, 0.7), "precise": (0.1, 0.5)}.items():
        writer.write("a dog", preset=preset)
        assert (fake.requests[-1]["temperature"], fake.requests[-1]["top_p"]) == (temperature, top_p)
        assert 100 <= fake.requests[-1]["max_tokens"] <= 1024


def test_configured_model_wins(fake):
    plan = writer_for(fake.url, model="fake-model-1b").write("a cat")
    assert plan.model == "fake-model-1b"
    assert fake.requests[0]["model"] == "fake-model-1b"


def test_llama_cpp_refusal_falls_back_to_json_object_and_is_remembered(fake):
    fake.behaviour.refuse_formats = {"json_schema"}
    writer = writer_for(fake.url)
    assert writer.write("a cat").source == "llm"
    assert [r["response_format"]["type"] for r in fake.requests] == ["json_schema", "json_object"]
    assert writer.write("a cat in a red hat").source == "llm"
    assert fake.requests[-1]["response_format"]["type"] == "json_object"  # no second refusal
    assert len(fake.requests) == 3


def test_plain_text_mode_with_prose_around_json(fake):
    fake.behaviour.refuse_formats = {"json_schema", "json_object"}
    fake.behaviour.reply = "Sure! Here is your prompt:\n" + json.dumps(GOOD) + "\nLet me know if you want changes {:)}"
    plan = writer_for(fake.url).write("a cat")
    assert plan.source == "llm"
    assert "response_format" not in fake.requests[-1]
    assert plan.prompt == GOOD["prompt"]


def test_code_fences_are_parsed(fake):
    fake.behaviour.reply = "```json\n" + json.dumps(GOOD, indent=2) + "\n```"
    assert writer_for(fake.url).write("a cat").prompt == GOOD["prompt"]


def test_missing_caption_and_negative_are_filled_in(fake):
    fake.behaviour.reply = json.dumps({"prompt": "a fox in the snow, detailed"})
    plan = writer_for(fake.url).write("a fox in the snow")
    assert plan.source == "llm"
    assert plan.negative_prompt == DEFAULT_NEGATIVE
    assert plan.caption == "Here is a fox in the snow."


def test_answer_without_prompt_falls_back_offline(fake):
    fake.behaviour.reply = json.dumps({"negative_prompt": "blurry", "caption": "A fox."})
    plan = writer_for(fake.url).write("a fox in the snow")
    assert plan.source == "offline"
    assert "no 'prompt'" in plan.notice and fake.url in plan.notice
    assert plan.prompt.startswith("a fox in the snow")


def test_junk_200_falls_back_offline(fake):
    fake.behaviour.reply = "I have just completed my 2018 Summer Fare, and I'm running 6"
    plan = writer_for(fake.url).write("a fox in the snow")
    assert plan.source == "offline"
    assert "no JSON object" in plan.notice


def test_truncated_json_keeps_complete_fields(fake):
    fake.behaviour.finish_reason = "length"
    fake.behaviour.reply = '{ "prompt": "A fox sleeping under a cherry tree.", "negative_prompt": "blurry" , "caption": "In the forest of dre'
    plan = writer_for(fake.url).write("a fox sleeping under a cherry tree")
    assert plan.source == "llm"
    assert plan.prompt == "A fox sleeping under a cherry tree."
    assert plan.caption == "Here is a fox sleeping under a cherry tree."


def test_http_500_says_what_and_where(fake):
    fake.behaviour.status = 500
    plan = writer_for(fake.url).write("a fox")
    assert plan.source == "offline"
    assert "HTTP 500" in plan.notice or "refused" in plan.notice
    assert fake.url in plan.notice


def test_http_404_from_wrong_path(fake):
    client = LlmClient(url=fake.url.replace("/v1", "/nothing-here"))
    server, models = client.discover()
    assert server is None and models == []


def test_slow_server_times_out(fake):
    fake.behaviour.delay_s = 5
    started = time.monotonic()
    plan = writer_for(fake.url, timeout_s=1.0).write("a fox")
    assert time.monotonic() - started < 4
    assert plan.source == "offline"
    assert "did not answer within 1 s" in plan.notice


def test_hanging_server_is_bounded(fake):
    fake.behaviour.hang = True
    started = time.monotonic()
    plan = writer_for(fake.url, timeout_s=1.0).write("a fox", on_token=lambda t: None)
    assert time.monotonic() - started < 4
    assert plan.source == "offline"


def test_unreachable_server_says_which(fake):
    url = dead_url()
    plan = writer_for(url).write("a red fox")
    assert plan.source == "offline"
    assert url in plan.notice
    assert plan.prompt.startswith("a red fox")


def test_off_never_calls_a_server(fake):
    plan = writer_for("off").write("a red fox")
    assert plan.source == "offline"
    assert "switched off" in plan.notice
    assert fake.requests == []


def test_discovery_takes_first_answering_server_and_caches(fake):
    with FakeLlmServer(Behaviour(models=["second"])) as second:
        client = LlmClient(discovery_urls=(dead_url(), fake.url, second.url))
        assert client.discover() == (fake.url, ["fake-model-7b", "fake-model-1b"])
        fake.behaviour.models = ["changed"]
        assert client.discover()[1] == ["fake-model-7b", "fake-model-1b"]  # cached
        assert client.discover(refresh=True)[1] == ["changed"]


def test_discovery_miss_is_retried_soon(fake):
    url = dead_url()
    client = LlmClient(discovery_urls=(url,), miss_ttl_s=0.0)
    assert client.discover() == (None, [])
    client.discovery_urls = (fake.url,)
    assert client.discover()[0] == fake.url


def test_discovery_never_takes_a_comfyui_for_an_llm(fake):
    """ComfyUI Desktop listens on 8000, vLLM's port; one with an LLM custom node may even list models."""
    with FakeComfyUI(Knobs(openai_models=["comfy-llm-node"])) as comfy:
        client = LlmClient(discovery_urls=(comfy.url + "/v1", fake.url))
        assert client.discover() == (fake.url, ["fake-model-7b", "fake-model-1b"])


@pytest.mark.parametrize("body", [{"data": ["a-model"]}, ["a-model"], {"models": [{"name": "a-model"}]}])
def test_discovery_skips_a_server_whose_model_list_is_not_openai_shaped(fake, body):
    with FakeLlmServer(Behaviour(models_body=body)) as odd:
        client = LlmClient(discovery_urls=(odd.url, fake.url))
        assert client.discover()[0] == fake.url


def test_explicit_url_is_normalized_and_not_discovered(fake):
    bare = fake.url[: -len("/v1")].replace("http://", "")
    client = LlmClient(url=bare, discovery_urls=(dead_url(),))
    assert client.candidates() == (fake.url,)
    assert client.discover()[0] == fake.url


def test_streaming_relays_tokens(fake):
    tokens = []
    plan = writer_for(fake.url).write("a cat", on_token=tokens.append)
    assert len(tokens) > 3
    assert fake.requests[0]["stream"] is True
    assert json.loads("".join(tokens))["caption"] == plan.caption


def test_streaming_reads_a_bare_event_stream_as_utf8(fake):
    # llama.cpp's server: "text/event-stream" without a charset and raw UTF-8, which requests alone reads as Latin-1
    fake.behaviour.reply = json.dumps({"prompt": "un café à Paris — 東京", "negative_prompt": "flou",
                                       "caption": "Un café à Paris."}, ensure_ascii=False)
    fake.behaviour.bare_event_stream = True
    tokens = []
    plan = writer_for(fake.url).write("a cafe in Paris", on_token=tokens.append)
    assert plan.prompt.startswith("un café à Paris — 東京")
    assert plan.caption == "Un café à Paris."
    assert "".join(tokens) == fake.behaviour.reply


def test_follow_up_edits_the_previous_prompt_of_the_same_session_only(fake):
    writer = writer_for(fake.url)
    writer.write("a cat wearing a red hat", session="alice")
    first_prompt = json.loads(fake.behaviour.reply)["prompt"]
    writer.write("now make it at night", session="alice")
    system = fake.requests[-1]["messages"][0]["content"]
    assert first_prompt in system and "what to change" in system
    writer.write("now make it at night", session="bob")
    assert first_prompt not in fake.requests[-1]["messages"][0]["content"]


def test_new_request_in_same_session_is_not_an_edit(fake):
    writer = writer_for(fake.url)
    writer.write("a lighthouse on a cliff", session="alice")
    writer.write("a bowl of fruit", session="alice")
    assert "what to change" not in fake.requests[-1]["messages"][0]["content"]


def test_find_json_object_skips_broken_braces():
    assert find_json_object("{oops} then {\"a\": 1}") == {"a": 1}
    assert find_json_object("no json here") is None


def test_non_string_prompt_is_refused():
    with pytest.raises(LlmError):
        parse_prompt_fields('{"prompt": 42}')
