"""Whole jobs through the running app: fake LLM + fake ComfyUI, events read from /ws."""
from __future__ import annotations

import io
import json
import time
import uuid

import pytest
import requests
from PIL import Image

from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import dead_url
from .support.live import LiveServer
from .support.relay import Relay, finished


@pytest.fixture
def serve(make_app):
    """serve(comfy_url, llm_url="off", **config) -> LiveServer: 6 steps at 96x64, the caption spoken by Piper."""

    def serve(comfy_url, llm_url="off", **config):
        return LiveServer(make_app(**{"comfyui_url": comfy_url, "llm_url": llm_url, "tts_engine": "piper", "steps": 6,
                                      "width": 96, "height": 64, **config}))

    return serve


def test_transcript_job_end_to_end(tmp_path, serve, comfy, fake_llm):
    with serve(comfy.url, fake_llm.url) as server:
        relay = Relay(server)
        response = requests.post(server.url + "/api/jobs", json={"transcript": "a cat wearing a red hat",
                                                                 "session": relay.session, "seed": 1234}, timeout=10)
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        events = relay.until(finished)
        relay.close()
    assert all(e["job_id"] == job_id for e in events if "job_id" in e)
    stages = [e["stage"] for e in events if e["type"] == "stage"]
    assert stages == ["writing_prompt", "submitting", "rendering", "saving", "done"]
    kinds = [e["type"] for e in events]
    assert kinds.index("prompt") < kinds.index("render") < kinds.index("image") < len(kinds) - 1
    assert "token" in kinds  # the LLM's writing streams too
    # what ComfyUI is doing, in a person's words: never a node's own title such as "Negative Prompt"
    phases = [e["phase"] for e in events if e["type"] == "node"]
    assert {"loading the model", "encoding the prompt", "drawing", "decoding the picture"} <= set(phases), phases
    assert not any("title" in e for e in events if e["type"] == "node")
    steps = [(e["value"], e["max"]) for e in events if e["type"] == "progress" and "value" in e]
    assert steps == [(i, 6) for i in range(1, 7)]
    percents = [e["percent"] for e in events if "percent" in e]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert any(e["type"] == "preview" and e["url"].startswith("data:image/jpeg;base64,") for e in events)
    assert [e for e in events if e["type"] == "node" and e["class_type"] == "KSampler"]
    done = events[-1]["snapshot"]
    assert done["stage"] == "done" and done["image_url"] == f"/outputs/{job_id}.png"
    assert done["render"]["seed"] == 1234 and done["render"]["checkpoint"] == "tiny-sd15-random.safetensors"
    assert "v1-5-pruned-emaonly.safetensors" in done["notes"][0]  # said which checkpoint replaced the missing one
    assert set(done["timings"]) >= {"prompt", "render", "save", "total"}
    png = tmp_path / "instance" / "outputs" / f"{job_id}.png"
    image = Image.open(png)
    assert image.size == (96, 64)
    assert image.text["speech2image:transcript"] == "a cat wearing a red hat"
    assert image.text["speech2image:prompt"] == done["prompt"]
    assert image.text["speech2image:seed"] == "1234"
    assert image.text["speech2image:checkpoint"] == "tiny-sd15-random.safetensors"
    assert image.text["speech2image:workflow"] == "txt2img.json"
    assert json.loads(image.text["prompt"])["6"]["inputs"]["text"] == done["prompt"]  # loadable in ComfyUI
    assert comfy.posted[0]["prompt"]["3"]["inputs"]["seed"] == 1234


def test_image_and_thumbnail_are_served_by_id(serve, comfy):
    with serve(comfy.url) as server:
        relay = Relay(server)
        job_id = requests.post(server.url + "/api/jobs", json={"prompt": "a red square", "session": relay.session},
                               timeout=10).json()["job_id"]
        relay.until(finished)
        state = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=5).json()
        assert state["stage"] == "done" and state["prompt_source"] == "user"
        png = requests.get(server.url + state["image_url"], timeout=5)
        assert png.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(png.content)).format == "PNG"
        thumb = requests.get(server.url + state["thumb_url"], timeout=5)
        assert Image.open(io.BytesIO(thumb.content)).format == "JPEG"
        for bad in ("/outputs/../../etc/passwd.png", f"/outputs/{job_id}.txt", "/outputs/xyz.png",
                    f"/outputs/{uuid.uuid4().hex}.png"):
            assert requests.get(server.url + bad, timeout=5).status_code == 404


def test_spoken_job_from_one_upload(serve, comfy, make_clip):
    with serve(comfy.url, preload=True) as server:
        server.wait_for_whisper()
        relay = Relay(server)
        with open(make_clip("a lighthouse on a rocky coast", "piper", "webm"), "rb") as f:
            response = requests.post(server.url + "/api/jobs", files={"audio": ("rec.webm", f, "audio/webm")},
                                     data={"session": relay.session}, timeout=10)
        assert response.status_code == 202
        events = relay.until(finished, timeout=60)
    stages = [e["stage"] for e in events if e["type"] == "stage"]
    assert stages == ["transcribing", "writing_prompt", "submitting", "rendering", "saving", "done"]
    transcript = next(e for e in events if e["type"] == "transcript")["text"].lower()
    assert "lighthouse" in transcript
    snapshot = events[-1]["snapshot"]
    assert snapshot["prompt_source"] == "offline" and "lighthouse" in snapshot["prompt"]
    assert set(snapshot["timings"]) >= {"asr", "prompt", "render", "save", "total"}


def test_each_session_sees_only_its_jobs(serve, comfy):
    with serve(comfy.url) as server:
        alice, bob = Relay(server), Relay(server)
        a = requests.post(server.url + "/api/jobs", json={"prompt": "a", "session": alice.session}, timeout=10).json()
        b = requests.post(server.url + "/api/jobs", json={"prompt": "b", "session": bob.session}, timeout=10).json()
        alice.until(finished)
        bob.until(finished)
    assert {e["job_id"] for e in alice.events if "job_id" in e} == {a["job_id"]}
    assert {e["job_id"] for e in bob.events if "job_id" in e} == {b["job_id"]}


def test_cancel_mid_render(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as comfy, serve(comfy.url, steps=20) as server:
        relay = Relay(server)
        job_id = requests.post(server.url + "/api/jobs", json={"prompt": "slow", "session": relay.session},
                               timeout=10).json()["job_id"]
        relay.until(lambda e: e["type"] == "progress" and e.get("value") == 2)
        assert requests.post(f"{server.url}/api/jobs/{job_id}/cancel", timeout=10).status_code == 200
        events = relay.until(finished)
        assert events[-1]["stage"] == "cancelled"
        assert comfy.interrupts and comfy.interrupts[0]["prompt_id"] == comfy.posted[0]["prompt_id"]
        assert requests.get(f"{server.url}/api/jobs/{job_id}", timeout=5).json()["image_url"] is None


def test_queued_position_is_relayed(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as comfy, serve(comfy.url) as server:
        relay = Relay(server)
        for name in ("first", "second"):
            requests.post(server.url + "/api/jobs", json={"prompt": name, "session": relay.session}, timeout=10)
            time.sleep(0.2)
        done = []
        relay.until(lambda e: finished(e) and done.append(e) is None and len(done) == 2, timeout=30)
    queued = [e for e in relay.events if e["type"] == "stage" and e["stage"] == "queued"]
    assert queued and queued[0]["position"] == 2


@pytest.mark.parametrize("config,code,words", [
    ({"checkpoint": "nope.safetensors"}, "comfyui_rejected", "checkpoint 'nope.safetensors' is not in ComfyUI; available:"),
    ({"checkpoint": "broken.safetensors"}, "comfyui_execution_error", "CheckpointLoaderSimple (node 4): Error while deserializing"),
])
def test_comfyui_errors_reach_the_page(serve, comfy, config, code, words):
    with serve(comfy.url, **config) as server:
        relay = Relay(server)
        requests.post(server.url + "/api/jobs", json={"prompt": "x", "session": relay.session}, timeout=10)
        events = relay.until(finished)
    error = events[-1]["error"]
    assert events[-1]["stage"] == "error" and error["code"] == code and words in error["message"]
    assert error["stage"] in ("submitting", "rendering")


def test_without_comfyui_the_job_ends_with_its_prompt_ready(serve):
    """No ComfyUI at all is no failure: the prompt and the spoken caption are the result."""
    url = dead_url("")
    with serve(url) as server:
        relay = Relay(server)
        requests.post(server.url + "/api/jobs", json={"transcript": "a red fox", "session": relay.session}, timeout=10)
        events = relay.until(finished)
        health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
        gallery = requests.get(server.url + "/api/gallery?all=1", timeout=10).json()["entries"]
    snapshot = events[-1]["snapshot"]
    assert events[-1]["stage"] == "prompt_ready" and snapshot["error"] is None
    note = snapshot["notes"][-1]
    assert note.startswith("Prompt ready; there is no ComfyUI to render it.") and "--preview-method auto" in note
    assert "during the job" not in note  # it never answered at all
    assert snapshot["prompt"].startswith("a red fox")  # the finished prompt is kept for another try
    assert snapshot["caption"] and snapshot["audio_url"]  # and the caption is spoken
    assert snapshot["image_url"] is None and gallery[0]["stage"] == "prompt_ready"
    assert health["state"] == "unreachable" and "--preview-method auto" in health["fix"]


def test_queue_cleared_in_comfyui_fails_the_job_within_seconds(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as comfy, serve(comfy.url) as server:
        relay = Relay(server)
        for text in ("a lighthouse at dusk", "a tram in the snow"):
            requests.post(server.url + "/api/jobs", json={"prompt": text, "steps": 40, "session": relay.session},
                          timeout=10)
        relay.until(lambda e: e["type"] == "stage" and e["stage"] == "queued")
        requests.post(comfy.url + "/queue", json={"clear": True}, timeout=5)
        cleared = time.monotonic()
        ended = relay.until(lambda e: finished(e) and e["stage"] == "error", timeout=15)[-1]
        waited = time.monotonic() - cleared
        requests.post(comfy.url + "/interrupt", json={}, timeout=5)
    assert ended["error"]["code"] == "comfyui_dropped" and waited < 6
    assert ended["error"]["message"] == "ComfyUI dropped this job: its queue was cleared or it restarted."


def test_reconnecting_page_resumes_its_job(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.15)) as comfy, serve(comfy.url) as server:
        first = Relay(server)
        job_id = requests.post(server.url + "/api/jobs", json={"prompt": "x", "session": first.session},
                               timeout=10).json()["job_id"]
        first.until(lambda e: e["type"] == "progress" and e.get("value") == 1)
        first.close()  # the tab reloads
        second = Relay(server, session=first.session)
        events = second.until(finished)
    assert events[0]["type"] == "resume" and events[0]["job_id"] == job_id
    assert events[-1]["stage"] == "done"


@pytest.mark.parametrize("payload,code", [
    ({}, "empty_job"),
    ({"prompt": "x", "steps": 0}, "bad_steps"),
    ({"prompt": "x", "seed": "abc"}, "bad_seed"),
    ({"prompt": "x", "width": 1.5}, "bad_width"),
    ({"prompt": "x", "cfg": -1}, "bad_cfg"),
    ({"prompt": "x", "preset": "nope"}, "bad_preset"),
    ({"prompt": 5}, "bad_prompt"),
    ({"prompt": "x", "request_id": "two words"}, "bad_request_id"),
])
def test_bad_job_requests(client, payload, code):
    response = client.post("/api/jobs", json=payload)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_unknown_job_is_404(client):
    for path in (f"/api/jobs/{uuid.uuid4().hex}", "/api/jobs/../../x"):
        assert client.get(path).status_code == 404


def test_unknown_workflow_is_a_clear_job_error(serve, comfy):
    with serve(comfy.url) as server:
        relay = Relay(server)
        requests.post(server.url + "/api/jobs", json={"prompt": "x", "workflow": "missing.json",
                                                      "session": relay.session}, timeout=10)
        events = relay.until(finished)
    assert events[-1]["error"]["code"] == "unknown_workflow"
    assert "txt2img.json" in events[-1]["error"]["message"]
