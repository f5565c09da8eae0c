"""Model families as data: detection with its evidence, each family's recipe and prompt dialect, and the
graph each family gets from stock nodes (pure steps, no server)."""
from __future__ import annotations

import dataclasses

import pytest

from speech2image.picture import (
    FAMILIES,
    VARIANTS,
    ComfyError,
    RenderParams,
    ServerFacts,
    WorkflowLibrary,
    detect,
    dialect_for,
    graph_for,
    read_header,
    recipe_for,
    render_job,
)
from speech2image.picture.prepare import Edit

from .support.data import ROOT
from .support.model_files import KEYS, write_model

LIBRARY = WorkflowLibrary(ROOT / "workflows", ROOT / "no-uploads")
LOADERS = {  # what a server's loaders offer (/object_info), as node_inputs() reads them
    "DualCLIPLoader": {"clip_name1": ["clip_g.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"],
                       "clip_name2": ["clip_g.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"],
                       "type": ["sdxl", "sd3", "flux", "hidream"]},
    "TripleCLIPLoader": {f"clip_name{i}": ["clip_g.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"]
                         for i in (1, 2, 3)},
    "VAELoader": {"vae_name": ["ae.safetensors", "sd3_vae.safetensors", "pixel_space"]},
}


@pytest.mark.parametrize("name,family,variant", [
    ("v1-5-pruned-emaonly.safetensors", "sd15", None), ("sd_xl_base_1.0.safetensors", "sdxl", None),
    ("juggernautXL_v9.safetensors", "sdxl", None), ("sd_xl_turbo_1.0_fp16.safetensors", "sdxl", "turbo"),
    ("ponyDiffusionV6XL.safetensors", "pony", None), ("Illustrious-XL-v0.1.safetensors", "illustrious", None),
    ("noobaiXLNAIXL_vPred10Version.safetensors", "illustrious", "vpred"),
    ("juggernautXL_lightning.safetensors", "sdxl", "lightning"), ("dreamshaperXL_lcm.safetensors", "sdxl", "lcm"),
    ("flux1-dev-fp8_e4m3fn.safetensors", "flux", None), ("flux1-schnell.safetensors", "flux", "schnell"),
    ("flux1-fill-dev.safetensors", "flux", "inpaint"), ("sd3.5_large.safetensors", "sd3", None),
    ("sd_xl_refiner_1.0.safetensors", "sdxl", "refiner"), ("chroma-unlocked-v37.safetensors", "chroma", None),
    ("qwen_image_fp8_e4m3fn.safetensors", "qwen-image", None), ("hidream_i1_full_fp8.safetensors", "hidream", None),
])
def test_detection_by_name(name, family, variant):
    found = detect(name, "checkpoints")
    assert (found.family, found.variant) == (family, variant)
    assert found.source == "name" and found.evidence.startswith("name: ")


def test_words_inside_other_words_say_nothing():
    found = detect("hyperRealism_30.safetensors", "checkpoints")  # "hyper" inside a word is not Hyper-SD
    assert (found.family, found.variant, found.source) == ("sd15", None, "unknown")


def test_detection_order_choice_metadata_header_name_folder_unknown(tmp_path):
    sdxl = {"modelspec.architecture": "stable-diffusion-xl-v1-base", "modelspec.resolution": "1152x896"}
    by_metadata = detect("model.safetensors", "checkpoints", sdxl)
    assert (by_metadata.family, by_metadata.source) == ("sdxl", "metadata")
    assert "modelspec.architecture" in by_metadata.evidence and by_metadata.recipe.width == 1152  # its own size
    # metadata beats the header, and the name refines a base family (Pony is SDXL underneath)
    header = read_header(write_model(tmp_path / "a.safetensors", "sd15", sdxl))
    assert detect("pony-merge.safetensors", "checkpoints", *header).family == "pony"
    assert detect("sd15-looking-name.safetensors", "checkpoints", *header).family == "sdxl"
    by_header = detect("model.safetensors", "checkpoints", *read_header(write_model(tmp_path / "b.safetensors", "sdxl")))
    assert (by_header.family, by_header.source) == ("sdxl", "header") and "2816" in by_header.evidence
    assert detect("x.safetensors", "diffusion_models").source == "folder"
    unknown = detect("x.safetensors", "checkpoints")
    assert (unknown.family, unknown.source) == ("sd15", "unknown") and "Settings → Models" in unknown.evidence
    chosen = by_header.chosen({"family": "pony", "variant": "lightning"})
    assert (chosen.family, chosen.variant, chosen.evidence) == ("pony", "lightning", "your choice")


@pytest.mark.parametrize("kind,family,variant", [
    ("sd15", "sd15", None), ("sd15-inpaint", "sd15", "inpaint"), ("sd2", "sd2", None), ("sdxl", "sdxl", None),
    ("sdxl-refiner", "sdxl", "refiner"), ("sd3", "sd3", None), ("flux-dev", "flux", None),
    ("flux-schnell", "flux", "schnell"), ("chroma", "chroma", None), ("qwen-image", "qwen-image", None),
    ("hidream", "hidream", None), ("lumina2", "lumina2", None), ("z-image", "z-image", None),
    ("lora-sd15", "sd15", None), ("lora-sdxl", "sdxl", None), ("lora-flux", "flux", None),
])
def test_detection_by_header_of_files_written_here(tmp_path, kind, family, variant):
    """A few KB with the right tensor names and shapes: detection reads the header, never the weights."""
    path = write_model(tmp_path / "neutral.safetensors", kind)
    assert path.stat().st_size < 20_000
    found = detect("neutral.safetensors", "loras" if kind.startswith("lora") else "checkpoints", *read_header(path))
    assert (found.family, found.variant, found.source) == (family, variant, "header"), found


def test_not_a_safetensors_file_has_no_header(tmp_path):
    (tmp_path / "x.ckpt").write_bytes(b"PK\x03\x04 a pickle")
    (tmp_path / "huge.safetensors").write_bytes((2**40).to_bytes(8, "little") + b"{}")
    assert read_header(tmp_path / "x.ckpt") is None and read_header(tmp_path / "huge.safetensors") is None
    assert read_header(tmp_path / "absent.safetensors") is None


def test_lora_triggers_from_its_metadata():
    phrase = detect("a.safetensors", "loras", {"ss_base_model_version": "sdxl_base_v1-0",
                                               "modelspec.trigger_phrase": "inkpunk, bold lines"})
    assert phrase.family == "sdxl" and phrase.triggers == ("inkpunk", "bold lines")
    tags = detect("b.safetensors", "loras", {"ss_base_model_version": "sd_v1",
                                             "ss_tag_frequency": '{"a": {"cat": 3, "hat": 9}, "b": {"cat": 8}}'})
    assert tags.family == "sd15" and tags.triggers == ("cat", "hat")


def test_recipes_are_the_published_starting_points():
    sd15, sdxl = recipe_for("sd15"), recipe_for("sdxl")
    shipped = LIBRARY.load("txt2img.json").defaults
    assert (sd15.width, sd15.steps, sd15.cfg, sd15.sampler) == (512, shipped["steps"], shipped["cfg"], shipped["sampler"])
    assert (sdxl.width, sdxl.height, sdxl.sampler, sdxl.scheduler) == (1024, 1024, "dpmpp_2m", "karras")
    assert 20 <= sdxl.steps <= 30 and 5 <= sdxl.cfg <= 7 and (1216, 832) in sdxl.sizes
    turbo = recipe_for("sdxl", "turbo")
    assert turbo.steps <= 4 and turbo.cfg <= 2 and turbo.width == 1024
    lightning, lcm = recipe_for("sdxl", "lightning"), recipe_for("sd15", "lcm")
    assert 4 <= lightning.steps <= 8 and lightning.scheduler == "sgm_uniform" and lcm.sampler == "lcm"
    sd3 = recipe_for("sd3")
    assert sd3.shift == 3.0 and 4 <= sd3.cfg <= 5 and sd3.steps == 28
    flux, schnell = recipe_for("flux"), recipe_for("flux", "schnell")
    assert (flux.sampler, flux.scheduler, flux.steps, flux.cfg, flux.guidance) == ("euler", "simple", 20, 1.0, 3.5)
    assert (schnell.steps, schnell.cfg) == (4, 1.0)
    assert not VARIANTS["inpaint"].text_to_image and not VARIANTS["refiner"].text_to_image
    for family in FAMILIES.values():  # every row is complete enough to draw with
        assert family.recipe.sizes[0] == (family.recipe.width, family.recipe.height)


def test_dialects():
    flux, sd15, pony, turbo = dialect_for("flux"), dialect_for("sd15"), dialect_for("pony"), dialect_for("sdxl", "turbo")
    assert flux.sentences and not flux.negative
    assert not sd15.sentences and sd15.negative
    assert pony.prefix.startswith("score_9") and pony.negative_prefix.startswith("score_6")
    assert not turbo.negative  # CFG 1: a negative prompt would do nothing
    assert dialect_for("sdxl", "turbo", cfg=7.0).negative  # unless the settings raise CFG


def job(checkpoint=None, edit=None, **params):
    values = {"negative_text": "blurry, lowres", "seed": 5, "checkpoint": checkpoint, **params}
    return render_job(LIBRARY.load("txt2img.json"), RenderParams("a fox in the snow", **values), edit)


def models(*names_and_folders):
    return tuple(detect(name, folder) for name, folder in names_and_folders)


def classes(graph):
    return sorted(node["class_type"] for node in graph.values())


def test_an_sdxl_checkpoint_gets_its_recipe_and_the_settings_still_win():
    server = ServerFacts("u", models(("juggernautXL_v9.safetensors", "checkpoints")))
    graph, used, _ = graph_for(job("juggernautXL_v9.safetensors"), server)
    sampler = graph["3"]["inputs"]
    assert (sampler["steps"], sampler["cfg"], sampler["sampler_name"], sampler["scheduler"]) == (25, 6.0, "dpmpp_2m", "karras")
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (1024, 1024)
    assert graph["7"]["inputs"]["text"] == "blurry, lowres" and used["family"] == "sdxl"
    assert classes(graph) == classes(LIBRARY.load("txt2img.json").graph)  # an SDXL checkpoint keeps the graph
    graph, used, _ = graph_for(job("juggernautXL_v9.safetensors", steps=9, width=832, scheduler="normal"), server)
    assert (graph["3"]["inputs"]["steps"], graph["5"]["inputs"]["width"], used["scheduler"]) == (9, 832, "normal")


def test_a_turbo_checkpoint_runs_few_steps_at_cfg_one_without_negative():
    graph, used, notes = graph_for(job("sd_xl_turbo_1.0_fp16.safetensors"),
                                   ServerFacts("u", models(("sd_xl_turbo_1.0_fp16.safetensors", "checkpoints"))))
    assert graph["3"]["inputs"]["steps"] <= 4 and graph["3"]["inputs"]["cfg"] <= 2
    assert graph["7"]["inputs"]["text"] == "" and used["variant"] == "turbo"
    assert any("does not use a negative prompt" in note for note in notes)


FLUX = ServerFacts("u", models(("flux1-dev-fp8_e4m3fn.safetensors", "diffusion_models")), loaders=LOADERS)


def test_a_flux_diffusion_model_gets_its_loaders_guidance_and_latent():
    graph, used, _ = graph_for(job("flux1-dev-fp8_e4m3fn.safetensors"), FLUX)
    by_class = {node["class_type"]: node for node in graph.values()}
    assert by_class["UNETLoader"]["inputs"]["unet_name"] == "flux1-dev-fp8_e4m3fn.safetensors"
    assert by_class["DualCLIPLoader"]["inputs"] == {"clip_name1": "clip_l.safetensors",
                                                    "clip_name2": "t5xxl_fp16.safetensors", "type": "flux"}
    assert by_class["VAELoader"]["inputs"]["vae_name"] == "ae.safetensors"
    assert by_class["FluxGuidance"]["inputs"]["guidance"] == 3.5 and "EmptySD3LatentImage" in by_class
    assert "CheckpointLoaderSimple" not in by_class and "EmptyLatentImage" not in by_class
    sampler = graph["3"]["inputs"]
    assert sampler["cfg"] == 1.0 and graph[sampler["positive"][0]]["class_type"] == "FluxGuidance"
    assert graph[graph["8"]["inputs"]["vae"][0]]["class_type"] == "VAELoader"
    assert graph["7"]["inputs"]["text"] == "" and used["checkpoint"] == "flux1-dev-fp8_e4m3fn.safetensors"
    graph, used, _ = graph_for(job("flux1-dev-fp8_e4m3fn.safetensors", guidance=2.0), FLUX)
    assert used["guidance"] == 2.0


def test_a_flux_model_without_its_companions_is_refused_naming_the_files():
    bare = dataclasses.replace(FLUX, loaders={"DualCLIPLoader": {**LOADERS["DualCLIPLoader"], "clip_name1": [],
                                                                 "clip_name2": []}, "VAELoader": {"vae_name": []}})
    with pytest.raises(ComfyError) as refused:
        graph_for(job("flux1-dev-fp8_e4m3fn.safetensors"), bare)
    message = refused.value.message
    assert "CLIP-L" in message and "T5-XXL" in message and "ComfyUI/models/text_encoders" in message
    assert "ae.safetensors" in message and "ComfyUI/models/vae" in message
    old = dataclasses.replace(FLUX, loaders={**LOADERS, "DualCLIPLoader": {**LOADERS["DualCLIPLoader"], "type": ["sdxl"]}})
    with pytest.raises(ComfyError, match="update ComfyUI"):
        graph_for(job("flux1-dev-fp8_e4m3fn.safetensors"), old)


def test_sd3_gets_triple_clip_and_its_sampling_shift():
    server = ServerFacts("u", models(("sd3.5_medium.safetensors", "diffusion_models")), loaders=LOADERS)
    graph, used, _ = graph_for(job("sd3.5_medium.safetensors"), server)
    by_class = {node["class_type"]: node for node in graph.values()}
    assert by_class["TripleCLIPLoader"]["inputs"] == {"clip_name1": "clip_l.safetensors", "clip_name2": "clip_g.safetensors",
                                                      "clip_name3": "t5xxl_fp16.safetensors"}
    assert by_class["ModelSamplingSD3"]["inputs"]["shift"] == 3.0 and used["shift"] == 3.0
    assert graph[graph["3"]["inputs"]["model"][0]]["class_type"] == "ModelSamplingSD3"
    graph, used, _ = graph_for(job("sd3.5_medium.safetensors", shift=6.0), server)  # the settings still win
    assert used["shift"] == 6.0
    assert by_class["VAELoader"]["inputs"]["vae_name"] == "sd3_vae.safetensors"


def test_changing_a_picture_with_flux_encodes_it_with_the_flux_vae():
    edit = Edit("parent", b"png", 7, 0.4)
    graph, used, _ = graph_for(job("flux1-dev-fp8_e4m3fn.safetensors", edit=edit), dataclasses.replace(FLUX, image="p.png"))
    encoder = next(node for node in graph.values() if node["class_type"] == "VAEEncode")
    assert graph[encoder["inputs"]["vae"][0]]["class_type"] == "VAELoader"
    assert graph["3"]["inputs"]["denoise"] == 0.4 and graph["3"]["inputs"]["cfg"] == 1.0
    assert not any(node["class_type"].startswith("Empty") for node in graph.values())


LORAS = models(("detail-tweaker-xl.safetensors", "loras"), ("anime-lines-sd15.safetensors", "loras"))


def test_loras_reach_the_graph_with_their_strength_and_trigger_words():
    lora = detect("detail-tweaker-xl.safetensors", "loras", {"ss_base_model_version": "sdxl_base_v1-0",
                                                             "modelspec.trigger_phrase": "detailed"})
    server = ServerFacts("u", models(("juggernautXL_v9.safetensors", "checkpoints")), loras=(lora,))
    graph, used, notes = graph_for(job("juggernautXL_v9.safetensors",
                                       loras=({"name": "detail-tweaker-xl.safetensors", "strength": 0.7},)), server)
    loader = next(node for node in graph.values() if node["class_type"] == "LoraLoader")["inputs"]
    assert (loader["lora_name"], loader["strength_model"], loader["strength_clip"]) == ("detail-tweaker-xl.safetensors", 0.7, 0.7)
    assert graph["6"]["inputs"]["text"].startswith("detailed, a fox")
    assert graph[graph["3"]["inputs"]["model"][0]]["class_type"] == "LoraLoader"
    assert graph[graph["6"]["inputs"]["clip"][0]]["class_type"] == "LoraLoader"
    assert used["loras"] == [{"name": "detail-tweaker-xl.safetensors", "strength": 0.7}]
    assert any("trigger words" in note for note in notes)


def test_a_lora_of_another_family_or_missing_is_refused():
    server = ServerFacts("u", models(("juggernautXL_v9.safetensors", "checkpoints")), loras=LORAS)
    with pytest.raises(ComfyError, match="made for SD 1.5 and the model juggernautXL_v9.safetensors is SDXL"):
        graph_for(job("juggernautXL_v9.safetensors", loras=({"name": "anime-lines-sd15.safetensors", "strength": 1},)),
                  server)
    with pytest.raises(ComfyError, match="not in ComfyUI"):
        graph_for(job("juggernautXL_v9.safetensors", loras=({"name": "gone.safetensors", "strength": 1},)), server)


def test_a_diffusion_model_takes_loras_on_the_model_only():
    lora = detect("flux-realism.safetensors", "loras")
    graph, _, _ = graph_for(job("flux1-dev-fp8_e4m3fn.safetensors",
                                loras=({"name": "flux-realism.safetensors", "strength": 0.9},)),
                            dataclasses.replace(FLUX, loras=(lora,)))
    loader = next(node for node in graph.values() if node["class_type"] == "LoraLoaderModelOnly")["inputs"]
    assert loader["strength_model"] == 0.9 and graph[loader["model"][0]]["class_type"] == "UNETLoader"


def test_inpaint_and_refiner_models_do_not_draw_new_pictures():
    server = ServerFacts("u", models(("sd_xl_refiner_1.0.safetensors", "checkpoints"),
                                     ("v1-5-inpainting.safetensors", "checkpoints")))
    with pytest.raises(ComfyError, match="cannot draw a new one"):
        graph_for(job("sd_xl_refiner_1.0.safetensors"), server)
    with pytest.raises(ComfyError, match="has no models to draw with"):
        graph_for(job(), server)  # the automatic choice skips them, and none is left


def test_a_persons_own_workflow_keeps_its_graph_and_values(tmp_path):
    uploads = tmp_path / "uploads"
    library = WorkflowLibrary(ROOT / "workflows", uploads)
    library.save_upload("mine.json", (ROOT / "workflows" / "txt2img.json").read_bytes())
    own = render_job(library.load("mine.json"), RenderParams("a fox", seed=1, checkpoint="juggernautXL_v9.safetensors"))
    graph, used, _ = graph_for(own, ServerFacts("u", models(("juggernautXL_v9.safetensors", "checkpoints"))))
    assert (graph["3"]["inputs"]["steps"], graph["5"]["inputs"]["width"]) == (20, 512)  # its own, not SDXL's
    assert used["family"] == "sdxl" and graph["4"]["inputs"]["ckpt_name"] == "juggernautXL_v9.safetensors"


def test_unknown_model_renders_as_before():
    """No model information at all: the shipped workflow's own values, on an SD 1.5 graph."""
    graph, used, notes = graph_for(job("mystery.safetensors"), ServerFacts("u", None))
    shipped = LIBRARY.load("txt2img.json")
    assert graph["3"]["inputs"] == {**shipped.graph["3"]["inputs"], "seed": 5}
    assert graph["5"] == shipped.graph["5"] and used["family"] == "sd15"
    assert notes == ["What mystery.safetensors is could not be told, so it was drawn as SD 1.5; if that is wrong, "
                     "say what it is under Settings → Models."]


def test_every_family_keys_are_a_few_kb():
    assert all(kind in KEYS for kind in ("sd15", "sdxl", "sd3", "flux-dev"))


class StubLlm:
    """An LLM that answers one fixed JSON object and keeps the instructions it was given."""

    off = False

    def __init__(self, fields):
        self.fields, self.messages = fields, None

    def complete_json(self, messages, sampling, model=None, on_token=None):
        self.messages = messages
        return dict(self.fields), "stub-model", "http://stub"


def test_the_llm_is_told_the_dialect_and_its_answer_kept_to_it():
    from speech2image.prompt import PromptWriter

    answer = {"prompt": "A red fox sits in deep snow under a pale winter sky.", "negative_prompt": "blurry, ugly",
              "caption": "Here is a red fox in the snow."}
    llm = StubLlm(answer)
    flux = PromptWriter(llm).write("a red fox in the snow", dialect=dialect_for("flux"))
    system = llm.messages[0]["content"]
    assert "a prompt for Flux.1" in system and "plain English sentences" in system and 'empty string ("")' in system
    assert (flux.source, flux.negative_prompt, flux.family) == ("llm", "", "Flux.1")  # its negative is not used
    pony = PromptWriter(StubLlm({**answer, "prompt": "red fox, snow, winter"})).write("a red fox in the snow",
                                                                                       dialect=dialect_for("pony"))
    assert pony.prompt == "score_9, score_8_up, score_7_up, red fox, snow, winter"
    assert pony.negative_prompt == "score_6, score_5, score_4, blurry, ugly"
    sd15 = StubLlm({**answer, "prompt": "red fox, snow"})
    plan = PromptWriter(sd15).write("a red fox in the snow")  # no model known: SD's tags, as before
    assert "Comma-separated phrases" in sd15.messages[0]["content"] and plan.negative_prompt == "blurry, ugly"
