"""Finding the nodes to fill by following the graph, on differently wired workflows."""
from __future__ import annotations

import io
import json

import pytest

from speech2image.picture.img2img import img2img_form, txt2img_form
from speech2image.picture.workflows import (
    RenderParams,
    WorkflowError,
    WorkflowLibrary,
    fill,
    load_workflow,
)

from .support.data import ROOT, SHIPPED

# A LoRA between checkpoint and sampler, clip skip, a combined positive conditioning,
# KSamplerAdvanced (noise_seed) and two outputs.
LORA_GRAPH = {
    "10": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper_8.safetensors"}},
    "11": {"class_type": "LoraLoader", "inputs": {"model": ["10", 0], "clip": ["10", 1], "lora_name": "ink.safetensors",
                                                   "strength_model": 0.8, "strength_clip": 0.8}},
    "12": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["11", 1], "stop_at_clip_layer": -2}},
    "20": {"class_type": "CLIPTextEncode", "inputs": {"text": "main subject", "clip": ["12", 0]}},
    "21": {"class_type": "CLIPTextEncode", "inputs": {"text": "ink style", "clip": ["12", 0]}},
    "22": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["20", 0], "conditioning_2": ["21", 0]}},
    "23": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["12", 0]}},
    "30": {"class_type": "EmptyLatentImage", "inputs": {"width": 768, "height": 512, "batch_size": 1}},
    "40": {"class_type": "KSamplerAdvanced", "inputs": {
        "add_noise": "enable", "noise_seed": 5, "steps": 30, "cfg": 6.5, "sampler_name": "dpmpp_2m",
        "scheduler": "karras", "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable",
        "model": ["11", 0], "positive": ["22", 0], "negative": ["23", 0], "latent_image": ["30", 0]}},
    "50": {"class_type": "VAEDecode", "inputs": {"samples": ["40", 0], "vae": ["10", 2]}},
    "60": {"class_type": "PreviewImage", "inputs": {"images": ["50", 0]}},
    "61": {"class_type": "SaveImage", "inputs": {"images": ["50", 0], "filename_prefix": "ink"}},
}

# Flux-style: no checkpoint loader, SamplerCustomAdvanced with a guider, a noise node and a scheduler.
CUSTOM_SAMPLER_GRAPH = {
    "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-schnell.safetensors", "weight_dtype": "default"}},
    "2": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "t5.safetensors", "clip_name2": "clip_l.safetensors", "type": "flux"}},
    "3": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
    "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "pos", "clip": ["2", 0]}},
    "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "neg", "clip": ["2", 0]}},
    "6": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["4", 0], "negative": ["5", 0], "cfg": 1.0}},
    "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": 99}},
    "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
    "9": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "simple", "steps": 4, "denoise": 1.0}},
    "10": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "11": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["7", 0], "guider": ["6", 0], "sampler": ["8", 0],
                                                             "sigmas": ["9", 0], "latent_image": ["10", 0]}},
    "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["3", 0]}},
    "13": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "flux"}},
}


def test_shipped_workflow_roles():
    roles = load_workflow(json.dumps(SHIPPED), "txt2img.json").roles
    assert roles.sampler == "3" and roles.output == "9" and roles.latent == "5"
    assert roles.positive == ("6", "text") and roles.negative == ("7", "text")
    assert roles.checkpoint == ("4", "ckpt_name") and roles.seed == ("3", "seed")
    assert roles.steps == ("3", "steps") and roles.cfg == ("3", "cfg")


def test_lora_workflow_roles_and_fill():
    workflow = load_workflow(json.dumps(LORA_GRAPH), "lora.json")
    roles = workflow.roles
    assert roles.sampler == "40" and roles.output == "61"  # SaveImage preferred over PreviewImage
    assert roles.positive == ("20", "text")  # through ConditioningCombine
    assert roles.negative == ("23", "text")
    assert roles.checkpoint == ("10", "ckpt_name")  # through the LoRA loader
    assert roles.seed == ("40", "noise_seed") and roles.latent == "30"
    assert roles.sampler_name == ("40", "sampler_name")
    assert workflow.defaults == {"steps": 30, "cfg": 6.5, "seed": 5, "width": 768, "height": 512,
                                 "sampler": "dpmpp_2m", "scheduler": "karras", "checkpoint": "dreamshaper_8.safetensors"}
    graph, used = fill(workflow, RenderParams("a heron", "blurry", seed=None, steps=12, width=640, checkpoint="x.ckpt",
                                              sampler="euler_ancestral"))
    assert graph["40"]["inputs"]["sampler_name"] == "euler_ancestral" and used["sampler"] == "euler_ancestral"
    assert graph["20"]["inputs"]["text"] == "a heron" and graph["23"]["inputs"]["text"] == "blurry"
    assert graph["21"]["inputs"]["text"] == "ink style"  # the other branch of the combine is left alone
    assert graph["40"]["inputs"]["steps"] == 12 and graph["30"]["inputs"]["width"] == 640
    assert graph["30"]["inputs"]["height"] == 512 and graph["10"]["inputs"]["ckpt_name"] == "x.ckpt"
    assert 0 <= graph["40"]["inputs"]["noise_seed"] < 2**53 and used["seed"] == graph["40"]["inputs"]["noise_seed"]
    assert LORA_GRAPH["20"]["inputs"]["text"] == "main subject"  # the loaded workflow is never modified


def test_custom_sampler_workflow_roles():
    workflow = load_workflow(json.dumps(CUSTOM_SAMPLER_GRAPH), "flux.json")
    roles = workflow.roles
    assert roles.sampler == "11" and roles.positive == ("4", "text") and roles.negative == ("5", "text")
    assert roles.seed == ("7", "noise_seed") and roles.steps == ("9", "steps") and roles.cfg == ("6", "cfg")
    assert roles.latent == "10" and roles.checkpoint is None and workflow.checkpoint is None
    assert roles.sampler_name == ("8", "sampler_name")  # the KSamplerSelect feeding the sampler
    graph, used = fill(workflow, RenderParams("p", "n", seed=3, checkpoint="ignored", sampler="dpmpp_2m"))
    assert graph["7"]["inputs"]["noise_seed"] == 3 and "checkpoint" not in used
    assert graph["8"]["inputs"]["sampler_name"] == "dpmpp_2m" and used["sampler"] == "dpmpp_2m"


def test_seeds_are_random_unless_fixed():
    workflow = load_workflow(json.dumps(SHIPPED), "txt2img.json")
    seeds = {fill(workflow, RenderParams("p"))[1]["seed"] for _ in range(5)}
    assert len(seeds) == 5
    assert fill(workflow, RenderParams("p", seed=77))[1]["seed"] == 77


def test_ui_format_is_refused_with_export_hint():
    ui_format = {"last_node_id": 9, "last_link_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": [[1, 4, 0, 3, 0, "MODEL"]],
                 "groups": [], "config": {}, "version": 0.4}
    with pytest.raises(WorkflowError) as info:
        load_workflow(json.dumps(ui_format), "mine.json")
    assert info.value.code == "ui_format_workflow"
    assert "Export (API)" in info.value.message


@pytest.mark.parametrize("mutate,role", [
    (lambda g: g.pop("9"), "output image node"),
    (lambda g: g["3"]["inputs"].pop("positive"), "sampler"),
    (lambda g: g["6"].update(class_type="ConditioningZeroOut", inputs={}), "positive prompt"),
])
def test_unmappable_graph_names_the_role(mutate, role):
    graph = json.loads(json.dumps(SHIPPED))
    mutate(graph)
    with pytest.raises(WorkflowError, match=f"could not find the {role}"):
        load_workflow(json.dumps(graph), "broken.json")


@pytest.mark.parametrize("data,words", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "not a ComfyUI API-format workflow"),
    ('{"1": {"inputs": {}}}', "has no class_type"),
    ('{"1": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}', "links to missing node 9"),
])
def test_malformed_workflows(data, words):
    with pytest.raises(WorkflowError, match=words):
        load_workflow(data, "x.json")


def shared_encoder_graph():
    graph = json.loads(json.dumps(SHIPPED))
    graph["3"]["inputs"]["negative"] = ["6", 0]  # both prompts from one encoder: links cannot tell
    for node in graph.values():
        node.pop("_meta", None)
    return graph


def test_ambiguous_graph_asks_for_a_mapping(tmp_path):
    with pytest.raises(WorkflowError, match="roles.json"):
        load_workflow(json.dumps(shared_encoder_graph()), "shared.json")


def test_sidecar_mapping_settles_ambiguity(tmp_path):
    shipped, uploads = tmp_path / "shipped", tmp_path / "uploads"
    shipped.mkdir()
    (shipped / "shared.json").write_text(json.dumps(shared_encoder_graph()))
    (shipped / "shared.roles.json").write_text(json.dumps({"positive": "6", "negative": "7"}))
    library = WorkflowLibrary(shipped, uploads)
    assert library.names() == ["shared.json"]
    roles = library.load("shared.json").roles
    assert roles.positive == ("6", "text") and roles.negative == ("7", "text")


def test_titles_settle_ambiguity():
    graph = shared_encoder_graph()
    graph["6"]["_meta"] = {"title": "Positive"}
    graph["7"]["_meta"] = {"title": "Negative"}
    roles = load_workflow(json.dumps(graph), "titled.json").roles
    assert roles.positive == ("6", "text") and roles.negative == ("7", "text")


def test_library_refuses_path_tricks(tmp_path):
    library = WorkflowLibrary(ROOT / "workflows", tmp_path)
    for name in ("../secrets.json", "/etc/passwd", "x.roles.json", "txt2img"):
        with pytest.raises(WorkflowError):
            library.load(name)


def test_upload_on_the_page(make_app):
    client = make_app(comfyui_url="http://127.0.0.1:9").test_client()
    ok = client.post("/api/workflows", data={"workflow": (io.BytesIO(json.dumps(LORA_GRAPH).encode()), "my lora.json")},
                     content_type="multipart/form-data")
    assert ok.status_code == 201
    assert ok.get_json()["name"] == "my lora.json"
    assert ok.get_json()["roles"]["positive"] == ["20", "text"]
    listed = client.get("/api/comfyui").get_json()
    assert "my lora.json" in listed["workflows"] and "txt2img.json" in listed["workflows"]
    assert listed["reachable"] is False
    # each workflow's own values, which the page shows as what an empty override means
    assert listed["workflow_defaults"]["my lora.json"] == {
        "seed": 5, "steps": 30, "cfg": 6.5, "sampler": "dpmpp_2m", "scheduler": "karras", "width": 768, "height": 512,
        "checkpoint": "dreamshaper_8.safetensors"}
    assert listed["workflow_defaults"]["txt2img.json"]["steps"] == 20
    ui = {"nodes": [], "links": []}
    refused = client.post("/api/workflows", data={"workflow": (io.BytesIO(json.dumps(ui).encode()), "ui.json")},
                          content_type="multipart/form-data")
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "ui_format_workflow"
    unmappable = client.post("/api/workflows", data={"workflow": (io.BytesIO(b'{"1": {"class_type": "VAELoader", "inputs": {}}}'), "x.json")},
                             content_type="multipart/form-data")
    assert "could not find the output image node" in unmappable.get_json()["error"]["message"]
    assert client.post("/api/workflows").status_code == 400


# --- the image-to-image form (changing a picture) ---------------------------------------------

IMG2IMG = json.loads((ROOT / "workflows" / "img2img.json").read_text())


def changed(workflow, **params):
    """The graph as a change of a picture fills it: the uploaded picture's name and the strength."""
    return fill(workflow, RenderParams(prompt_text="p", image="speech2image/abc.png", **params))


def test_shipped_img2img_workflow_is_recognised_and_used_as_it_is():
    workflow = load_workflow(json.dumps(IMG2IMG), "img2img.json")
    assert workflow.roles.image == ("10", "image") and workflow.roles.denoise == ("3", "denoise")
    assert workflow.roles.latent is None
    same, note = img2img_form(workflow)
    assert same is workflow and note is None
    graph, used = changed(workflow, denoise=0.3, seed=8)
    assert graph["10"]["inputs"]["image"] == "speech2image/abc.png" and graph["3"]["inputs"]["denoise"] == 0.3
    assert used["denoise"] == 0.3 and used["seed"] == 8


def test_shipped_txt2img_workflow_gets_its_img2img_form_with_its_own_vae():
    workflow = load_workflow(json.dumps(SHIPPED), "txt2img.json")
    derived, note = img2img_form(workflow)
    assert "The workflow txt2img.json is text-to-image" in note
    assert derived.graph["5"] == {"class_type": "VAEEncode", "_meta": {"title": "VAE Encode (picture to change)"},
                                  "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    assert derived.graph["10"]["class_type"] == "LoadImage" and derived.roles.image == ("10", "image")
    assert derived.roles.latent is None and "width" not in derived.defaults
    assert workflow.graph["5"]["class_type"] == "EmptyLatentImage"  # the workflow itself is left alone
    graph, used = changed(derived, denoise=0.55, width=512, height=512)
    assert graph["3"]["inputs"]["latent_image"] == ["5", 0] and graph["3"]["inputs"]["denoise"] == 0.55
    assert "width" not in used  # the picture's own size: nothing to set
    # the derived graph is what infer_roles itself finds in such a graph
    assert load_workflow(json.dumps(derived.graph), "again.json").roles.image == ("10", "image")


def test_flux_style_graph_is_derived_with_its_vae_loader_and_scheduler_denoise():
    derived, note = img2img_form(load_workflow(json.dumps(CUSTOM_SAMPLER_GRAPH), "flux.json"))
    assert note and derived.graph["10"]["class_type"] == "VAEEncode"
    assert derived.graph["10"]["inputs"]["vae"] == ["3", 0]  # the VAELoader its decoder uses
    assert derived.graph["14"]["class_type"] == "LoadImage"
    graph, used = changed(derived, denoise=0.4)
    assert graph["9"]["inputs"]["denoise"] == 0.4 and graph["14"]["inputs"]["image"] == "speech2image/abc.png"


def test_ksampler_advanced_takes_the_strength_as_skipped_steps():
    derived, _ = img2img_form(load_workflow(json.dumps(LORA_GRAPH), "lora.json"))
    assert derived.graph["30"]["inputs"]["vae"] == ["10", 2]
    graph, used = changed(derived, denoise=0.4)
    assert graph["40"]["inputs"]["start_at_step"] == 18 and used["denoise"] == 0.4  # 30 steps, the last 40 %


def test_an_inpaint_graph_and_a_mapping_name_the_picture():
    graph = json.loads(json.dumps(IMG2IMG))
    graph["11"] = {"class_type": "VAEEncodeForInpaint", "inputs": {"pixels": ["10", 0], "mask": ["10", 1],
                                                                   "vae": ["4", 2], "grow_mask_by": 6}}
    assert load_workflow(json.dumps(graph), "inpaint.json").roles.image == ("10", "image")
    graph["12"] = {"class_type": "LoadImage", "inputs": {"image": "other.png"}}
    mapped = load_workflow(json.dumps(graph), "inpaint.json", {"image": "12", "denoise": "3"})
    assert mapped.roles.image == ("12", "image") and mapped.roles.denoise == ("3", "denoise")


def test_a_new_picture_from_an_img2img_only_workflow_gets_an_empty_latent():
    workflow = txt2img_form(load_workflow(json.dumps(IMG2IMG), "img2img.json"))
    assert workflow.graph["11"]["class_type"] == "EmptyLatentImage" and "10" not in workflow.graph
    assert workflow.graph["3"]["inputs"]["denoise"] == 1.0 and workflow.roles.latent == "11"
    graph, used = fill(workflow, RenderParams(prompt_text="p", width=640, height=384))
    assert (graph["11"]["inputs"]["width"], graph["11"]["inputs"]["height"]) == (640, 384)


def test_graphs_that_cannot_change_a_picture_say_why():
    no_latent = {k: v for k, v in SHIPPED.items() if k != "5"}
    no_latent["3"] = {**SHIPPED["3"], "inputs": {**SHIPPED["3"]["inputs"], "latent_image": 0}}
    with pytest.raises(WorkflowError, match="does not lead to an empty latent"):
        img2img_form(load_workflow(json.dumps(no_latent), "odd.json"))
    with pytest.raises(WorkflowError, match="no picture input"):
        changed(load_workflow(json.dumps(SHIPPED), "txt2img.json"), denoise=0.5)
