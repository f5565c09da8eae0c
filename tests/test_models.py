"""The person's models through the app: listed with their families (GET /api/models, the command), a
correction kept, and whole jobs drawn the way each family wants, against the fake ComfyUI whose model
folders answer as a real 0.3.64 did; and the same against the real one when
SPEECH2IMAGE_TEST_REAL_COMFYUI_URL names it (with tests/support/model_files.py's placeholders in it)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from .support.data import ROOT
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.live import LiveServer
from .support.model_files import PLACEHOLDERS, family_folders, write_model
from .support.relay import Relay, finished, run

REAL_COMFYUI = os.environ.get("SPEECH2IMAGE_TEST_REAL_COMFYUI_URL")
real_only = pytest.mark.skipif(not REAL_COMFYUI, reason="set SPEECH2IMAGE_TEST_REAL_COMFYUI_URL to a real ComfyUI")
RECIPE = {"steps": 0, "width": 0, "height": 0}  # what the settings leave to the model's recipe


@pytest.fixture
def families():
    with FakeComfyUI(Knobs(step_delay_s=0.001, **family_folders())) as server:
        yield server


def listed(client) -> dict:
    answer = client.get("/api/models").get_json()
    return {m["name"]: m for m in answer["models"] + answer["loras"]}


def sent(comfy) -> dict:
    """The last graph ComfyUI was sent, by class (the first node of each)."""
    graph = comfy.posted[-1]["prompt"]
    found = {}
    for node in graph.values():
        found.setdefault(node["class_type"], node["inputs"])
    return found


def test_models_are_listed_with_family_variant_evidence_and_recipe(make_app, families):
    models = listed(make_app(comfyui_url=families.url).test_client())
    sd15, sdxl = models["v1-5-pruned-emaonly.safetensors"], models["juggernautXL_v9.safetensors"]
    assert (sd15["family"], sd15["folder"], sd15["recipe"]["width"]) == ("sd15", "checkpoints", 512)
    assert (sdxl["family"], sdxl["recipe"]["width"], sdxl["recipe"]["sampler"]) == ("sdxl", 1024, "dpmpp_2m")
    flux = models["flux1-dev-fp8_e4m3fn.safetensors"]
    assert (flux["family"], flux["folder"], flux["recipe"]["guidance"]) == ("flux", "diffusion_models", 3.5)
    assert models["sd_xl_turbo_1.0_fp16.safetensors"]["variant"] == "turbo"
    neutral = models["zz-neutral-name-b.safetensors"]  # nothing in its name: its metadata says SDXL
    assert (neutral["family"], neutral["source"]) == ("sdxl", "metadata") and "modelspec.architecture" in neutral["evidence"]
    lora = models["anime-lines-sd15.safetensors"]
    assert (lora["family"], lora["folder"], lora["triggers"]) == ("sd15", "loras", ["lineart", "anime"])
    assert ("checkpoints", "zz-neutral-name-b.safetensors") in families.metadata_asked  # through /view_metadata


def test_a_known_comfyui_folder_lets_the_header_decide(make_app, tmp_path):
    folder = tmp_path / "ComfyUI"
    (folder / "main.py").parent.mkdir()
    (folder / "main.py").write_text("")
    write_model(folder / "models" / "checkpoints" / "model-1.safetensors", "sdxl")
    write_model(folder / "models" / "unet" / "model-2.safetensors", "flux-schnell")  # the older folder
    knobs = Knobs(checkpoints=["model-1.safetensors"], diffusion_models=["model-2.safetensors"])
    with FakeComfyUI(knobs) as comfy:
        models = listed(make_app(comfyui_url=comfy.url, comfyui_dir=str(folder)).test_client())
        assert comfy.metadata_asked == []  # read here, from the header, without asking ComfyUI
    assert (models["model-1.safetensors"]["family"], models["model-1.safetensors"]["source"]) == ("sdxl", "header")
    assert (models["model-2.safetensors"]["family"], models["model-2.safetensors"]["variant"]) == ("flux", "schnell")


def test_a_correction_is_kept_per_file_and_forgotten_with_null(make_app, families):
    client = make_app(comfyui_url=families.url).test_client()
    answer = client.post("/api/models", json={"name": "juggernautXL_v9.safetensors", "family": "pony",
                                              "variant": "lightning"}).get_json()
    assert (answer["family"], answer["variant"], answer["evidence"]) == ("pony", "lightning", "your choice")
    again = listed(make_app(comfyui_url=families.url).test_client())  # the app restarted: still known
    assert again["juggernautXL_v9.safetensors"]["recipe"]["steps"] <= 8
    client.post("/api/models", json={"name": "juggernautXL_v9.safetensors", "family": None})
    assert listed(client)["juggernautXL_v9.safetensors"]["source"] == "name"
    bad = client.post("/api/models", json={"name": "x.safetensors", "family": "sd9"})
    assert bad.status_code == 400 and "'family' must be one of sd15" in bad.get_json()["error"]["message"]
    assert client.post("/api/models", json={"family": "sdxl"}).status_code == 400


def test_models_answer_says_when_comfyui_is_away(client):
    answer = client.get("/api/models").get_json()
    assert answer["reachable"] is False and "not reachable" in answer["error"] and answer["models"] == []
    assert {f["name"] for f in answer["families"]} >= {"sd15", "sd2", "sdxl", "pony", "illustrious", "sd3", "flux"}


def test_an_sdxl_job_runs_sdxls_recipe(make_app, families):
    with LiveServer(make_app(comfyui_url=families.url, **RECIPE)) as server:
        done, _ = run(server, prompt="a lighthouse at dusk", checkpoint="juggernautXL_v9.safetensors")
    assert done["stage"] == "done", done["error"]
    nodes = sent(families)
    assert (nodes["KSampler"]["steps"], nodes["KSampler"]["cfg"], nodes["KSampler"]["sampler_name"],
            nodes["KSampler"]["scheduler"]) == (25, 6.0, "dpmpp_2m", "karras")
    assert (nodes["EmptyLatentImage"]["width"], nodes["EmptyLatentImage"]["height"]) == (1024, 1024)
    assert done["render"]["family"] == "sdxl"


def test_a_turbo_job_runs_few_steps_without_negative(make_app, families):
    with LiveServer(make_app(comfyui_url=families.url, **RECIPE)) as server:
        done, _ = run(server, transcript="a red kite over the sea", checkpoint="sd_xl_turbo_1.0_fp16.safetensors")
    assert done["stage"] == "done", done["error"]
    graph = families.posted[-1]["prompt"]
    assert graph["3"]["inputs"]["steps"] <= 4 and graph["3"]["inputs"]["cfg"] <= 2
    assert graph["7"]["inputs"]["text"] == "" and done["negative_prompt"] == ""  # written without one


def test_a_flux_job_is_sent_as_its_stock_graph_and_written_as_sentences(make_app, families):
    with LiveServer(make_app(comfyui_url=families.url, checkpoint="flux1-dev-fp8_e4m3fn.safetensors", **RECIPE)) as server:
        done, _ = run(server, transcript="um, can you draw me a red fox in the snow")
    assert done["stage"] == "done", done["error"]
    nodes = sent(families)
    assert nodes["DualCLIPLoader"]["type"] == "flux" and nodes["UNETLoader"]["unet_name"].startswith("flux1-dev")
    assert nodes["VAELoader"]["vae_name"] == "ae.safetensors" and nodes["FluxGuidance"]["guidance"] == 3.5
    assert nodes["KSampler"]["cfg"] == 1.0 and "EmptySD3LatentImage" in nodes
    assert done["negative_prompt"] == "" and done["prompt"].startswith("A red fox in the snow.")


def test_an_sd15_prompt_keeps_its_negative(make_app, families):
    with LiveServer(make_app(comfyui_url=families.url, checkpoint="v1-5-pruned-emaonly.safetensors")) as server:
        done, _ = run(server, transcript="a red fox in the snow")
    assert done["stage"] == "done" and "blurry" in done["negative_prompt"] and "," in done["prompt"]


def test_rewrite_writes_for_the_chosen_model(make_app, families):
    client = make_app(comfyui_url=families.url).test_client()
    flux = client.post("/api/prompt", json={"transcript": "a red fox in the snow",
                                            "checkpoint": "flux1-dev-fp8_e4m3fn.safetensors"}).get_json()
    assert flux["family"] == "Flux.1" and flux["negative_prompt"] == "" and flux["prompt"].endswith(".")
    sd15 = client.post("/api/prompt", json={"transcript": "a red fox", "checkpoint": "v1-5-pruned-emaonly.safetensors"})
    assert sd15.get_json()["family"] == "SD 1.5" and "blurry" in sd15.get_json()["negative_prompt"]


def test_a_flux_model_without_text_encoders_is_refused_before_queueing(make_app):
    with FakeComfyUI(Knobs(**family_folders(text_encoders=[], vae=[]))) as comfy:
        with LiveServer(make_app(comfyui_url=comfy.url)) as server:
            done, _ = run(server, prompt="a fox", checkpoint="flux1-dev-fp8_e4m3fn.safetensors")
        assert comfy.posted == []  # nothing was queued
    message = done["error"]["message"]
    assert done["stage"] == "error" and done["error"]["code"] == "model_companions_missing"
    assert "t5xxl" in message and "clip_l" in message and "ComfyUI/models/text_encoders" in message
    assert "ComfyUI/models/vae" in message


def test_a_placeholder_that_fails_to_load_is_a_clear_error(make_app):
    with FakeComfyUI(Knobs(**family_folders(unloadable=("ae.safetensors",)))) as comfy:
        with LiveServer(make_app(comfyui_url=comfy.url)) as server:
            done, _ = run(server, prompt="a fox", checkpoint="flux1-dev-fp8_e4m3fn.safetensors")
    assert done["stage"] == "error" and "ComfyUI failed in VAELoader" in done["error"]["message"]
    assert "size mismatch" in done["error"]["message"]


def test_a_lora_reaches_the_graph_and_its_words_the_prompt(make_app, families):
    app = make_app(comfyui_url=families.url, checkpoint="juggernautXL_v9.safetensors")
    saved = app.test_client().post("/api/settings", json={"loras": [{"name": "detail-tweaker-xl.safetensors",
                                                                     "strength": 0.6}]})
    assert saved.status_code == 200 and saved.get_json()["settings"]["loras"][0]["strength"] == 0.6
    with LiveServer(app) as server:
        done, _ = run(server, prompt="a castle on a hill")
        other, _ = run(server, prompt="a castle", loras=[{"name": "anime-lines-sd15.safetensors", "strength": 1}])
        none, _ = run(server, prompt="a castle", loras=[])
    assert done["stage"] == "done", done["error"]
    lora = next(n["inputs"] for n in families.posted[0]["prompt"].values() if n["class_type"] == "LoraLoader")
    assert (lora["lora_name"], lora["strength_model"]) == ("detail-tweaker-xl.safetensors", 0.6)
    assert families.posted[0]["prompt"]["6"]["inputs"]["text"].startswith("xldetail, intricate lines, a castle on a hill")
    assert other["stage"] == "error" and "made for SD 1.5" in other["error"]["message"]
    assert none["stage"] == "done" and "LoraLoader" not in str(families.posted[-1]["prompt"])


def test_the_page_and_comfyui_choices_offer_every_model(make_app, families):
    client = make_app(comfyui_url=families.url).test_client()
    answer = client.get("/api/comfyui").get_json()
    assert "flux1-dev-fp8_e4m3fn.safetensors" in answer["choices"]["checkpoint"]
    assert "detail-tweaker-xl.safetensors" in answer["choices"]["loras"]
    assert answer["shipped_workflows"] == ["img2img.json", "txt2img.json"]
    assert {m["name"]: m["family"] for m in answer["models"]}["sd3.5_medium.safetensors"] == "sd3"
    page = client.get("/").get_data(as_text=True)
    assert ">Model <" in page and 'data-job="loras"' in page


def test_the_models_command_prints_a_table(tmp_path, families):
    env = {**os.environ, "SPEECH2IMAGE_DATA_DIR": str(tmp_path / "data"), "SPEECH2IMAGE_LLM_URL": "off",
           "SPEECH2IMAGE_COMFYUI_URL": families.url}
    result = subprocess.run([sys.executable, "-m", "speech2image", "models"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "FOLDER", "FAMILY", "EVIDENCE"]
    flux = next(line for line in lines if line.startswith("flux1-dev"))
    assert "diffusion_models" in flux and "Flux.1" in flux and "name: flux" in flux


# --- a real ComfyUI ------------------------------------------------------------------------------

def real_client(make_app, **config):
    client = make_app(comfyui_url=REAL_COMFYUI, **config).test_client()
    models = listed(client)
    missing = [name for folder in ("checkpoints", "diffusion_models", "loras") for name, _, _ in PLACEHOLDERS[folder]
               if name not in models]
    if missing:
        pytest.skip(f"the real ComfyUI lacks the placeholders {missing}: run python -m tests.support.model_files <ComfyUI>")
    return client, models


@real_only
def test_real_comfyui_lists_families_by_metadata(make_app):
    _, models = real_client(make_app)
    assert models["zz-neutral-name-b.safetensors"]["family"] == "sdxl"  # its metadata, through /view_metadata
    assert models["flux1-dev-placeholder.safetensors"]["family"] == "flux"
    assert models["detail-tweaker-xl.safetensors"]["triggers"] == ["detailed", "intricate"]


@real_only
def test_real_comfyui_accepts_each_familys_graph_and_the_load_failure_is_said(make_app):
    real_client(make_app)
    with LiveServer(make_app(comfyui_url=REAL_COMFYUI, steps=2, width=128, height=128)) as server:
        jobs = {name: run(server, prompt="a fox", checkpoint=name)[0] for name, _, _ in PLACEHOLDERS["diffusion_models"]
                if name != "plain-name-a.safetensors"}  # Flux, SD3, Chroma, Qwen-Image, HiDream, Lumina 2
    for name, job in jobs.items():  # validation passed (nodes, inputs, file names); the placeholder failed to load
        assert job["stage"] == "error" and job["error"]["code"] == "comfyui_execution_error", (name, job["error"])
        assert job["error"]["message"].startswith("ComfyUI failed in "), name


@real_only
def test_real_comfyui_draws_an_sdxl_checkpoint_with_its_recipe(make_app):
    real_client(make_app)
    with LiveServer(make_app(comfyui_url=REAL_COMFYUI, steps=2, width=128, height=128)) as server:
        relay = Relay(server)  # SDXL loads for a while on a CPU: wait longer than a fake render
        requests.post(server.url + "/api/jobs", json={"session": relay.session, "prompt": "a lighthouse",
                                                      "checkpoint": "tiny-sdxl-random.safetensors", "loras": [
                                                          {"name": "detail-tweaker-xl.safetensors", "strength": 0.5}]},
                      timeout=10)
        done = relay.until(finished, timeout=300)[-1]["snapshot"]
        relay.close()
    assert done["stage"] == "done", done["error"]
    assert (done["render"]["sampler"], done["render"]["scheduler"], done["render"]["family"]) == ("dpmpp_2m", "karras", "sdxl")
    assert done["render"]["loras"] == [{"name": "detail-tweaker-xl.safetensors", "strength": 0.5}]


def test_a_correction_that_is_not_json_is_refused_plainly(client):
    refused = client.post("/api/models", data="x", content_type="text/plain")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_json"
