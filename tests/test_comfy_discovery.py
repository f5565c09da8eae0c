"""Finding the ComfyUI on this computer when no address is configured: only a real ComfyUI answer counts.

The probed addresses are a parameter: these tests pass their own ports (fake servers on free
ports), never 8188 or 8000, which may be in use on the machine that runs them.
"""
from __future__ import annotations

import requests

from speech2image.config import Settings
from speech2image.picture.comfy import (
    DISCOVERY_URLS,
    ComfyDiscovery,
    comfyui_version,
    device_kind,
    probe,
)

from .support.fake_comfy import FakeComfyUI
from .support.fake_llm import FakeLlmServer, dead_url
from .support.relay import run


def base(llm: FakeLlmServer) -> str:
    return llm.url.removesuffix("/v1")


def test_the_usual_ports_are_looked_at_portable_first_then_desktop():
    assert DISCOVERY_URLS == ("http://127.0.0.1:8188", "http://127.0.0.1:8000")
    assert Settings().comfyui_url == ""  # empty: find it


def test_a_vllm_on_the_desktop_port_is_not_taken_for_comfyui(comfy):
    with FakeLlmServer() as vllm:
        discovery = ComfyDiscovery((dead_url(""), base(vllm), comfy.url))
        found = discovery.find()
    assert (found.url, found.how) == (comfy.url, "discovered")
    nothing, other, comfyui = found.tried
    assert nothing.answer == "nothing answered" and not nothing.listening
    assert other.version is None and "not ComfyUI answered HTTP 404 to /system_stats" in other.answer
    assert comfyui.version == "0.3.64" and comfyui.answer == "ComfyUI 0.3.64"


def test_nothing_found_says_what_answered_where():
    with FakeLlmServer() as vllm:
        down = dead_url("")
        found = ComfyDiscovery((down, base(vllm))).find()
    assert found.url is None
    message = found.miss_message()
    assert f"{down}: nothing answered" in message and f"{base(vllm)}: something that is not ComfyUI" in message
    assert "ComfyUI Desktop listens on port 8000" in message and "SPEECH2IMAGE_COMFYUI_DIR" in message


def test_the_answer_is_remembered_and_a_miss_is_retried_soon(comfy):
    with FakeComfyUI() as later:
        discovery = ComfyDiscovery((comfy.url,), cache_ttl_s=600)
        assert discovery.find().url == comfy.url
        discovery.candidates = (later.url,)  # as if the first one moved: the answer is still remembered
        assert discovery.find().url == comfy.url
        assert discovery.find(refresh=True).url == later.url
        discovery.forget()
        missing = ComfyDiscovery((dead_url(""),), miss_ttl_s=0.0)
        assert missing.find().url is None
        missing.candidates = (later.url,)
        assert missing.find().url == later.url  # a miss is not remembered for long


def test_system_stats_shapes():
    stats = {"system": {"comfyui_version": "0.3.64"}, "devices": [{"type": "cpu"}]}
    assert comfyui_version(stats) == "0.3.64" and device_kind(stats) == "cpu"
    assert device_kind({"devices": [{"type": "cpu"}, {"type": "cuda"}]}) == "gpu"
    assert device_kind({"devices": [{"type": "mps"}]}) == "gpu"
    assert device_kind({}) is None
    assert comfyui_version({"system": {}}) is None and comfyui_version(["x"]) is None
    assert probe(dead_url("")).version is None


def test_the_app_finds_comfyui_and_says_how(serve, comfy):
    with FakeLlmServer() as vllm:
        server = serve(comfyui_url="", comfyui_discover=f"{base(vllm)},{comfy.url}")
        health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
        snapshot, _ = run(server, prompt="a kite")
    assert health["state"] == "ready" and health["how"] == "discovered" and health["device"] == "cpu"
    assert health["url"] == comfy.url and health["servers"][0]["version"] == "0.3.64"
    assert snapshot["stage"] == "done" and snapshot["render"]["server"] == comfy.url


def test_a_configured_address_is_used_as_it_is(make_app, comfy):
    with FakeComfyUI() as other:
        client = make_app(comfyui_url=comfy.url, comfyui_discover=other.url).test_client()
        health = client.get("/api/health").get_json()["comfyui"]
    assert (health["url"], health["how"]) == (comfy.url, "configured")


def test_without_any_comfyui_the_page_says_where_it_looked(serve):
    down = dead_url("")
    with FakeLlmServer() as vllm:
        server = serve(comfyui_url="", comfyui_discover=f"{down},{base(vllm)}")
        health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
        snapshot, _ = run(server, prompt="a kite")
    assert health["state"] == "unreachable" and "ComfyUI Desktop listens on port 8000" in health["fix"]
    assert [(s["url"], s["how"]) for s in health["servers"]] == [(down, "discovery"), (base(vllm), "discovery")]
    assert "not ComfyUI" in health["servers"][1]["error"]
    assert snapshot["stage"] == "prompt_ready"
    assert f"No ComfyUI found on this computer ({down}: nothing answered;" in snapshot["notes"][-1]


def test_a_discovered_comfyui_that_went_away_is_looked_for_again(serve):
    with FakeComfyUI() as first, FakeComfyUI() as second:
        server = serve(comfyui_url="", comfyui_discover=f"{first.url},{second.url}")
        assert run(server, prompt="a kite")[0]["render"]["server"] == first.url
        first.stop()  # the remembered one is gone; the other is found on the next job
        snapshot, _ = run(server, prompt="a kite")
    assert snapshot["stage"] == "done" and snapshot["render"]["server"] == second.url
