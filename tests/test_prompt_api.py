"""POST /api/prompt and the LLM's health, through the app."""
from __future__ import annotations

import json

import pytest

from .support.fake_llm import dead_url


def test_prompt_from_llm(make_app, fake_llm):
    client = make_app(llm_url=fake_llm.url).test_client()
    response = client.post("/api/prompt", json={"transcript": "a cat in a red hat", "preset": "creative", "session": "s1"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["source"] == "llm"
    assert body["model"] == "fake-model-7b"
    assert {"prompt", "negative_prompt", "caption", "elapsed_s", "preset"} <= set(body)
    assert fake_llm.requests[0]["temperature"] == 0.9


def test_prompt_model_from_request(make_app, fake_llm):
    client = make_app(llm_url=fake_llm.url).test_client()
    body = client.post("/api/prompt", json={"transcript": "a cat", "model": "fake-model-1b"}).get_json()
    assert body["model"] == "fake-model-1b"


def test_prompt_offline_is_labelled_with_the_server_tried(make_app):
    url = dead_url()
    client = make_app(llm_url=url).test_client()
    body = client.post("/api/prompt", json={"transcript": "um a red fox in the snow"}).get_json()
    assert body["source"] == "offline"
    assert url in body["notice"]
    assert body["prompt"].startswith("a red fox in the snow")
    assert "model" not in body


def test_sse_stream_from_fake(make_app, fake_llm):
    client = make_app(llm_url=fake_llm.url).test_client()
    response = client.post("/api/prompt", json={"transcript": "a cat", "stream": True})
    assert response.mimetype == "text/event-stream"
    blocks = response.get_data(as_text=True).strip().split("\n\n")
    tokens = [json.loads(b.split("data: ", 1)[1])["text"] for b in blocks if b.startswith("event: token")]
    assert len(tokens) > 3
    result = json.loads(blocks[-1].split("data: ", 1)[1])
    assert blocks[-1].startswith("event: result")
    assert result["caption"] == json.loads("".join(tokens))["caption"]


def test_sse_error_event_for_nothing_to_draw(make_app):
    client = make_app(llm_url="off").test_client()
    response = client.post("/api/prompt", json={"transcript": "um please", "stream": True})
    body = response.get_data(as_text=True)
    assert body.startswith("event: error")
    assert "nothing to draw" in body


@pytest.mark.parametrize(
    "payload,code",
    [
        ({"transcript": ""}, "empty_transcript"),
        ({"transcript": "   "}, "empty_transcript"),
        ({}, "empty_transcript"),
        ({"transcript": 5}, "empty_transcript"),
        ({"transcript": "x" * 5000}, "transcript_too_long"),
        ({"transcript": "a cat", "preset": "wild"}, "bad_preset"),
        ({"transcript": "a cat", "session": ["x"]}, "bad_session"),
        ([1, 2], "bad_json"),
    ],
)
def test_bad_prompt_requests_are_400(client, payload, code):
    response = client.post("/api/prompt", json=payload)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_prompt_needs_json(client):
    response = client.post("/api/prompt", data="transcript=a cat")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_json"


def test_health_and_models_with_server(make_app, fake_llm):
    client = make_app(llm_url=fake_llm.url).test_client()
    llm = client.get("/api/health").get_json()["llm"]
    assert llm == {"state": "ready", "server": fake_llm.url, "model": "fake-model-7b", "models": ["fake-model-7b", "fake-model-1b"]}
    info = client.get("/api/llm").get_json()
    assert info["models"] == ["fake-model-7b", "fake-model-1b"]


def test_health_without_server_says_how_to_fix(make_app):
    url = dead_url()
    llm = make_app(llm_url=url).test_client().get("/api/health").get_json()["llm"]
    assert llm["state"] == "unreachable"
    assert llm["tried"] == [url]
    assert "LM Studio" in llm["fix"]


def test_health_when_off(make_app):
    assert make_app(llm_url="off").test_client().get("/api/health").get_json()["llm"]["state"] == "off"
