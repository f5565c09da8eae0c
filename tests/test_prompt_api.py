"""POST /api/prompt and the LLM's health, through the app."""
from __future__ import annotations

import json

import pytest

from speech2image import create_app

from .support.fake_llm import FakeLlmServer, dead_url


@pytest.fixture
def fake():
    with FakeLlmServer() as server:
        yield server


def make_client(tmp_path, **config):
    return create_app({"data_dir": str(tmp_path), "preload": False, **config}).test_client()


def test_prompt_from_llm(tmp_path, fake):
    client = make_client(tmp_path, llm_url=fake.url)
    response = client.post("/api/prompt", json={"transcript": "a cat in a red hat", "preset": "creative", "session": "s1"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["source"] == "llm"
    assert body["model"] == "fake-model-7b"
    assert {"prompt", "negative_prompt", "caption", "elapsed_s", "preset"} <= set(body)
    assert fake.requests[0]["temperature"] == 0.9


def test_prompt_model_from_request(tmp_path, fake):
    client = make_client(tmp_path, llm_url=fake.url)
    body = client.post("/api/prompt", json={"transcript": "a cat", "model": "fake-model-1b"}).get_json()
    assert body["model"] == "fake-model-1b"


def test_prompt_offline_is_labelled_with_the_server_tried(tmp_path):
    url = dead_url()
    client = make_client(tmp_path, llm_url=url)
    body = client.post("/api/prompt", json={"transcript": "um a red fox in the snow"}).get_json()
    assert body["source"] == "offline"
    assert url in body["notice"]
    assert body["prompt"].startswith("a red fox in the snow")
    assert "model" not in body


def test_sse_stream_from_fake(tmp_path, fake):
    client = make_client(tmp_path, llm_url=fake.url)
    response = client.post("/api/prompt", json={"transcript": "a cat", "stream": True})
    assert response.mimetype == "text/event-stream"
    blocks = response.get_data(as_text=True).strip().split("\n\n")
    tokens = [json.loads(b.split("data: ", 1)[1])["text"] for b in blocks if b.startswith("event: token")]
    assert len(tokens) > 3
    result = json.loads(blocks[-1].split("data: ", 1)[1])
    assert blocks[-1].startswith("event: result")
    assert result["caption"] == json.loads("".join(tokens))["caption"]


def test_sse_error_event_for_nothing_to_draw(tmp_path):
    client = make_client(tmp_path, llm_url="off")
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
def test_bad_prompt_requests_are_400(tmp_path, payload, code):
    client = make_client(tmp_path, llm_url="off")
    response = client.post("/api/prompt", json=payload)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_prompt_needs_json(tmp_path):
    client = make_client(tmp_path, llm_url="off")
    response = client.post("/api/prompt", data="transcript=a cat")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_json"


def test_health_and_models_with_server(tmp_path, fake):
    client = make_client(tmp_path, llm_url=fake.url)
    llm = client.get("/api/health").get_json()["llm"]
    assert llm == {"state": "ready", "server": fake.url, "model": "fake-model-7b", "models": ["fake-model-7b", "fake-model-1b"]}
    info = client.get("/api/llm").get_json()
    assert info["models"] == ["fake-model-7b", "fake-model-1b"]


def test_health_without_server_says_how_to_fix(tmp_path):
    url = dead_url()
    llm = make_client(tmp_path, llm_url=url).get("/api/health").get_json()["llm"]
    assert llm["state"] == "unreachable"
    assert llm["tried"] == [url]
    assert "LM Studio" in llm["fix"]


def test_health_when_off(tmp_path):
    assert make_client(tmp_path, llm_url="off").get("/api/health").get_json()["llm"]["state"] == "off"
