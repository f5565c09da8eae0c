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
from .support.relay import Relay, finished, run, start_job

JOBS = {"tts_engine": "piper", "steps": 6, "width": 96, "height": 64}  # 6 steps at 96x64, the caption spoken by Piper


def test_transcript_job_end_to_end(tmp_path, serve, comfy, fake_llm):
    server = serve(comfyui_url=comfy.url, llm_url=fake_llm.url, **JOBS)
    done, events = run(server, transcript="a cat wearing a red hat", seed=1234)
    job_id = done["job_id"]
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
    server = serve(comfyui_url=comfy.url, **JOBS)
    job_id = run(server, prompt="a red square")[0]["job_id"]
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
    server = serve(comfyui_url=comfy.url, preload=True, **JOBS)
    server.wait_for_whisper()
    snapshot, events = run(server, audio=make_clip("a lighthouse on a rocky coast", "piper", "webm"), timeout=60)
    stages = [e["stage"] for e in events if e["type"] == "stage"]
    assert stages == ["transcribing", "writing_prompt", "submitting", "rendering", "saving", "done"]
    transcript = next(e for e in events if e["type"] == "transcript")["text"].lower()
    assert "lighthouse" in transcript
    assert snapshot["prompt_source"] == "offline" and "lighthouse" in snapshot["prompt"]
    assert set(snapshot["timings"]) >= {"asr", "prompt", "render", "save", "total"}


def test_each_session_sees_only_its_jobs(serve, comfy):
    server = serve(comfyui_url=comfy.url, **JOBS)
    with Relay(server) as alice, Relay(server) as bob:
        a, b = start_job(server, alice.session, prompt="a"), start_job(server, bob.session, prompt="b")
        alice.until(finished)
        bob.until(finished)
    assert {e["job_id"] for e in alice.events if "job_id" in e} == {a}
    assert {e["job_id"] for e in bob.events if "job_id" in e} == {b}


def test_cancel_mid_render(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as comfy:
        server = serve(**JOBS | {"comfyui_url": comfy.url, "steps": 20})
        relay = Relay(server)
        job_id = start_job(server, relay.session, prompt="slow")
        relay.until(lambda e: e["type"] == "progress" and e.get("value") == 2)
        assert requests.post(f"{server.url}/api/jobs/{job_id}/cancel", timeout=10).status_code == 200
        events = relay.until(finished)
        assert events[-1]["stage"] == "cancelled"
        assert comfy.interrupts and comfy.interrupts[0]["prompt_id"] == comfy.posted[0]["prompt_id"]
        assert requests.get(f"{server.url}/api/jobs/{job_id}", timeout=5).json()["image_url"] is None


def test_queued_position_is_relayed(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as comfy:
        server = serve(comfyui_url=comfy.url, **JOBS)
        relay = Relay(server)
        for name in ("first", "second"):
            start_job(server, relay.session, prompt=name)
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
    _, events = run(serve(comfyui_url=comfy.url, **JOBS, **config), prompt="x")
    error = events[-1]["error"]
    assert events[-1]["stage"] == "error" and error["code"] == code and words in error["message"]
    assert error["stage"] in ("submitting", "rendering")


def test_without_comfyui_the_job_ends_with_its_prompt_ready(serve):
    """No ComfyUI at all is no failure: the prompt and the spoken caption are the result."""
    url = dead_url("")
    server = serve(comfyui_url=url, **JOBS)
    snapshot, events = run(server, transcript="a red fox")
    health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
    gallery = requests.get(server.url + "/api/gallery?all=1", timeout=10).json()["entries"]
    assert events[-1]["stage"] == "prompt_ready" and snapshot["error"] is None
    note = snapshot["notes"][-1]
    assert note.startswith("Prompt ready; there is no ComfyUI to render it.") and "--preview-method auto" in note
    assert "during the job" not in note  # it never answered at all
    assert snapshot["prompt"].startswith("a red fox")  # the finished prompt is kept for another try
    assert snapshot["caption"] and snapshot["audio_url"]  # and the caption is spoken
    assert snapshot["image_url"] is None and gallery[0]["stage"] == "prompt_ready"
    assert health["state"] == "unreachable" and "--preview-method auto" in health["fix"]


def test_queue_cleared_in_comfyui_fails_the_job_within_seconds(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as comfy:
        server = serve(comfyui_url=comfy.url, **JOBS)
        relay = Relay(server)
        for text in ("a lighthouse at dusk", "a tram in the snow"):
            start_job(server, relay.session, prompt=text, steps=40)
        relay.until(lambda e: e["type"] == "stage" and e["stage"] == "queued")
        requests.post(comfy.url + "/queue", json={"clear": True}, timeout=5)
        cleared = time.monotonic()
        ended = relay.until(lambda e: finished(e) and e["stage"] == "error", timeout=15)[-1]
        waited = time.monotonic() - cleared
        requests.post(comfy.url + "/interrupt", json={}, timeout=5)
    assert ended["error"]["code"] == "comfyui_dropped" and waited < 6
    assert ended["error"]["message"] == "ComfyUI dropped this job: its queue was cleared or it restarted."


def test_reconnecting_page_resumes_its_job(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.15)) as comfy:
        server = serve(comfyui_url=comfy.url, **JOBS)
        with Relay(server) as first:  # the tab reloads at the first step
            job_id = start_job(server, first.session, prompt="x")
            first.until(lambda e: e["type"] == "progress" and e.get("value") == 1)
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
    _, events = run(serve(comfyui_url=comfy.url, **JOBS), prompt="x", workflow="missing.json")
    assert events[-1]["error"]["code"] == "unknown_workflow"
    assert "txt2img.json" in events[-1]["error"]["message"]
