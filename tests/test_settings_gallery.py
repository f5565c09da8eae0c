"""Settings changed from the page, and the gallery that survives a restart."""
from __future__ import annotations

import json
import uuid

import pytest

from .support.fake_llm import FakeLlmServer
from .support.relay import run


def test_settings_read_change_persist_and_apply(tmp_path, make_app, serve, comfy):
    server = serve(comfyui_url=comfy.url, steps=4)
    client = server.app.test_client()
    current = client.get("/api/settings").get_json()
    assert current["settings"]["steps"] == 4 and current["defaults"]["steps"] == 4
    assert "comfyui_url" in current["editable"]
    changed = client.post("/api/settings", json={"steps": 9, "llm_preset": "precise", "seed": 5}).get_json()
    assert changed["settings"]["steps"] == 9 and changed["settings"]["llm_preset"] == "precise"
    snapshot, _ = run(server, prompt="a red kite")
    server.stop()
    assert snapshot["render"]["steps"] == 9 and snapshot["render"]["seed"] == 5
    assert comfy.posted[-1]["prompt"]["3"]["inputs"]["steps"] == 9
    saved = json.loads((tmp_path / "instance" / "settings.json").read_text())
    assert saved == {"steps": 9, "llm_preset": "precise", "seed": 5}
    restarted = make_app(comfyui_url=comfy.url, steps=4).test_client()  # the environment still says 4
    assert restarted.get("/api/settings").get_json()["settings"]["steps"] == 9


def test_changing_the_llm_url_applies_at_once(make_app, comfy):
    client = make_app(comfyui_url=comfy.url).test_client()
    assert client.post("/api/prompt", json={"transcript": "a cat"}).get_json()["source"] == "offline"
    with FakeLlmServer() as llm:
        client.post("/api/settings", json={"llm_url": llm.url})
        assert client.post("/api/prompt", json={"transcript": "a cat"}).get_json()["source"] == "llm"
        assert client.get("/api/health").get_json()["llm"]["server"] == llm.url


@pytest.mark.parametrize("change,words", [
    ({"steps": "many"}, "'steps' must be a whole number"),
    ({"steps": 500}, "'steps' must be from 0 to 200"),
    ({"cfg": True}, "'cfg' must be a number"),
    ({"comfyui_url": "ftp://x"}, "must look like http://127.0.0.1:8188"),
    ({"llm_url": "localhost:1234; rm -rf"}, "'llm_url' must be empty"),
    ({"tts_engine": "festival"}, "'tts_engine' must be one of"),
    ({"llm_preset": "wild"}, "'llm_preset' must be one of"),
    ({"workflow": "../../etc/passwd"}, "is not a workflow name"),
    ({"workflow": "missing.json"}, "there is no workflow named 'missing.json'"),
    ({"host": "0.0.0.0"}, "'host' is not a setting that can be changed here"),
])
def test_bad_settings_are_refused_clearly(make_app, change, words):
    client = make_app(steps=4).test_client()
    response = client.post("/api/settings", json=change)
    assert response.status_code == 400
    assert words in response.get_json()["error"]["message"]
    assert client.get("/api/settings").get_json()["settings"]["steps"] == 4  # nothing half-applied


def test_gallery_survives_a_restart_and_deletes(make_app, serve, comfy):
    server = serve(comfyui_url=comfy.url)
    first, _ = run(server, prompt="a blue boat", caption="Here is a blue boat.", seed=11)
    second, _ = run(server, prompt="a green hill", seed=12)
    failed, _ = run(server, prompt="x", checkpoint="nope.safetensors")
    server.stop()
    assert failed["stage"] == "error"
    client = make_app(comfyui_url=comfy.url).test_client()  # a new server process, same data folder
    entries = client.get("/api/gallery").get_json()["entries"]
    assert [e["job_id"] for e in entries] == [second["job_id"], first["job_id"]]  # newest first, images only
    everything = client.get("/api/gallery?all=1").get_json()["entries"]
    assert everything[0]["stage"] == "error" and "nope.safetensors" in everything[0]["error"]["message"]
    entry = client.get(f"/api/gallery/{first['job_id']}").get_json()
    assert entry["prompt"] == "a blue boat" and entry["caption"] == "Here is a blue boat."
    assert entry["render"]["seed"] == 11 and entry["render"]["workflow"] == "txt2img.json"
    assert set(entry["timings"]) >= {"render", "save", "total"}
    assert client.get(entry["thumb_url"]).status_code == 200
    assert client.delete(f"/api/gallery/{first['job_id']}").status_code == 200
    assert client.get(entry["image_url"]).status_code == 404
    assert client.get(f"/api/gallery/{first['job_id']}").status_code == 404
    assert client.delete(f"/api/gallery/{uuid.uuid4().hex}").status_code == 404
    assert client.get("/api/gallery?limit=x").status_code == 400
