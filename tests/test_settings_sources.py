"""Where each setting comes from: the environment at start wins, then what the page saved, then the
default; a saved value can be reset; start-up says which address each outside service has."""
from __future__ import annotations

import json
import logging


def test_the_environment_wins_for_this_run_and_the_saved_choice_waits(tmp_path, make_app, monkeypatch):
    settings_file = tmp_path / "instance" / "settings.json"
    client = make_app().test_client()
    assert client.post("/api/settings", json={"sampler": "euler", "llm_model": "saved-model"}).status_code == 200

    monkeypatch.setenv("SPEECH2IMAGE_SAMPLER", "dpmpp_2m")
    answer = make_app().test_client().get("/api/settings").get_json()
    assert answer["settings"]["sampler"] == "dpmpp_2m"  # the environment beats the saved choice
    assert answer["settings"]["llm_model"] == "saved-model"  # which still counts where no variable is set
    assert answer["sources"]["sampler"] == "environment" and answer["sources"]["llm_model"] == "saved"
    assert answer["sources"]["steps"] == "default"
    assert next(k for k in answer["knobs"] if k["name"] == "sampler")["variable"] == "SPEECH2IMAGE_SAMPLER"

    client = make_app().test_client()
    refused = client.post("/api/settings", json={"sampler": "heun"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "set_by_environment"
    assert "SPEECH2IMAGE_SAMPLER" in refused.get_json()["error"]["message"]
    assert json.loads(settings_file.read_text())["sampler"] == "euler"  # kept for runs without the variable

    monkeypatch.delenv("SPEECH2IMAGE_SAMPLER")
    assert make_app().test_client().get("/api/settings").get_json()["settings"]["sampler"] == "euler"


def test_null_resets_a_field_to_its_default(tmp_path, make_app, comfy):
    client = make_app(comfyui_url=comfy.url).test_client()
    client.post("/api/settings", json={"steps": 9, "comfyui_url": "http://127.0.0.1:8189", "seed": 5})
    reset = client.post("/api/settings", json={"comfyui_url": None, "steps": None}).get_json()
    assert reset["settings"]["comfyui_url"] == comfy.url and reset["settings"]["steps"] == 4  # this run's defaults
    assert reset["sources"]["comfyui_url"] == "default" and reset["sources"]["seed"] == "saved"
    assert json.loads((tmp_path / "instance" / "settings.json").read_text()) == {"seed": 5}
    # the pool follows at once: health asks the default server again
    assert client.get("/api/health").get_json()["comfyui"]["url"] == comfy.url


def test_start_up_names_each_service_and_where_its_address_comes_from(make_app, monkeypatch, caplog):
    monkeypatch.setenv("SPEECH2IMAGE_WHISPER_MODEL", "bundled")
    with caplog.at_level(logging.INFO, logger="speech2image"):
        make_app(comfyui_url="http://127.0.0.1:8189", llm_url="")
    lines = [r.getMessage() for r in caplog.records if r.name == "speech2image"]
    assert "ComfyUI: http://127.0.0.1:8189 (default)" in lines
    assert any(line.startswith("LLM server: looked for at http://localhost:1234/v1") for line in lines), lines
    assert "Whisper model: bundled (set by SPEECH2IMAGE_WHISPER_MODEL)" in lines
    assert "Voice: off, its default voice (default)" in lines


def test_start_up_says_where_it_will_look_for_comfyui(make_app, caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="speech2image"):
        make_app(comfyui_url="", comfyui_dir=str(tmp_path / "ComfyUI"))
    lines = [r.getMessage() for r in caplog.records if r.name == "speech2image"]
    assert (f"ComfyUI: looked for at http://127.0.0.1:8188, http://127.0.0.1:8000, else started from "
            f"{tmp_path / 'ComfyUI'} (default)") in lines, lines


def test_a_choice_a_server_offers_is_checked_against_its_list_when_it_answers(make_app, comfy, fake_llm):
    client = make_app(comfyui_url=comfy.url, llm_url=fake_llm.url).test_client()
    refused = client.post("/api/settings", json={"sampler": "no_such_sampler"})
    assert refused.status_code == 400
    message = refused.get_json()["error"]["message"]
    assert message.startswith("'sampler': ComfyUI has no 'no_such_sampler'; it offers euler") and "dpmpp_2m" in message
    assert client.post("/api/settings", json={"checkpoint": "nope.safetensors"}).status_code == 400
    assert client.post("/api/settings", json={"llm_model": "no-such-model"}).status_code == 400
    assert client.post("/api/settings", json={"scheduler": "no_such_scheduler"}).status_code == 400
    answer = client.post("/api/settings", json={"sampler": "dpmpp_2m", "llm_model": "fake-model-1b",
                                                "scheduler": "karras"})
    assert answer.status_code == 200 and answer.get_json()["warnings"] == [], answer.get_json()
    # the Model setting takes a file of any model folder: a diffusion model too
    comfy.knobs.diffusion_models = ["flux1-schnell-fp8.safetensors"]
    taken = client.post("/api/settings", json={"checkpoint": "flux1-schnell-fp8.safetensors"})
    assert taken.status_code == 200 and taken.get_json()["warnings"] == [], taken.get_json()


def test_a_choice_is_taken_with_a_warning_while_its_server_is_down(make_app):
    client = make_app().test_client()  # ComfyUI at :9, where nothing listens
    answer = client.post("/api/settings", json={"sampler": "my_custom_sampler"})
    assert answer.status_code == 200 and answer.get_json()["settings"]["sampler"] == "my_custom_sampler"
    assert answer.get_json()["warnings"] == ["'sampler' was taken as 'my_custom_sampler' without a check: ComfyUI "
                                             "did not answer"]


def test_a_comfyui_address_where_another_server_answers_is_refused(make_app, fake_llm):
    client = make_app().test_client()
    refused = client.post("/api/settings", json={"comfyui_url": fake_llm.url.removesuffix("/v1")})
    assert refused.status_code == 400
    message = refused.get_json()["error"]["message"]
    assert message.startswith(f"'comfyui_url': {fake_llm.url.removesuffix('/v1')} is not ComfyUI: something that "
                              "is not ComfyUI answered"), message
    taken = client.post("/api/settings", json={"comfyui_url": "http://127.0.0.1:9"})
    assert taken.status_code == 200 and "nothing answers as ComfyUI at http://127.0.0.1:9" in taken.get_json()["warnings"][0]
