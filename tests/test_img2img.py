"""Changing a picture by voice (img2img): whole jobs through the app against the fake ComfyUI, whose
/upload/image, LoadImage and VAEEncode follow what a real ComfyUI 0.3.64 answered
(tests/comfyui_traces/upload_image.json), and the same against the real one when
SPEECH2IMAGE_TEST_REAL_COMFYUI_URL names it."""
from __future__ import annotations

import io
import json
import os

import pytest
import requests
from PIL import Image

from .support.fake_comfy import FakeComfyUI, Knobs
from .support.relay import Relay, run

REAL_COMFYUI = os.environ.get("SPEECH2IMAGE_TEST_REAL_COMFYUI_URL")
EDITS = {"steps": 4, "width": 96, "height": 64}


def picture(tmp_path, job_id) -> Image.Image:
    return Image.open(tmp_path / "instance" / "outputs" / f"{job_id}.png")


def test_follow_up_changes_the_picture_itself(tmp_path, serve, comfy):
    server = serve(comfyui_url=comfy.url, **EDITS)
    with Relay(server) as relay:
        first, _ = run(server, relay, transcript="a red barn in a field", seed=77)
        assert first["decision"] == {"mode": "new", "by": "no_picture", "parent": None, "strength": None}
        parent_png = (tmp_path / "instance" / "outputs" / f"{first['job_id']}.png").read_bytes()
        edit, events = run(server, relay, transcript="now make it at night")
    assert edit["stage"] == "done", edit["error"]
    assert edit["decision"] == {"mode": "edit", "by": "offline", "parent": first["job_id"], "strength": 0.55}
    assert edit["edit_of"] == first["job_id"]
    assert any(e["type"] == "decision" and e["job_id"] == edit["job_id"] for e in events)
    assert "red barn in a field" in edit["prompt"] and "at night" in edit["prompt"]
    assert any("image-to-image form" in note for note in edit["notes"])  # txt2img.json was derived
    # uploaded under our own name in the speech2image subfolder of ComfyUI's input folder
    assert comfy.uploads[-1] == {"name": f"{first['job_id']}.png", "subfolder": "speech2image", "type": "input",
                                 "bytes": len(parent_png)}
    graph = comfy.posted[-1]["prompt"]
    loader = next(n for n in graph.values() if n["class_type"] == "LoadImage")
    assert loader["inputs"]["image"] == f"speech2image/{first['job_id']}.png"
    assert graph["5"]["class_type"] == "VAEEncode" and graph["5"]["inputs"]["vae"] == ["4", 2]
    assert graph["3"]["inputs"]["denoise"] == 0.55 and graph["3"]["inputs"]["seed"] == 77  # the parent's seed
    # the parent's own size, not the settings' 96x64... which it was made at; the parent file is untouched
    image = picture(tmp_path, edit["job_id"])
    assert image.size == (96, 64) and edit["render"]["seed"] == 77 and edit["render"]["denoise"] == 0.55
    assert image.text["speech2image:edit_of"] == first["job_id"] and image.text["speech2image:strength"] == "0.55"
    assert (tmp_path / "instance" / "outputs" / f"{first['job_id']}.png").read_bytes() == parent_png


def test_a_change_keeps_its_pictures_model_and_sampler_and_automatic_stays_put(serve, comfy):
    """A model added to ComfyUI (first in its list) changes neither an edit nor the automatic choice."""
    server = serve(comfyui_url=comfy.url, **EDITS)
    with Relay(server) as relay:
        first, _ = run(server, relay, transcript="a red barn in a field", sampler="dpmpp_2m")
        assert first["render"]["checkpoint"] == "tiny-sd15-random.safetensors"
        comfy.knobs.checkpoints = ["aaa-new-model.safetensors", *comfy.knobs.checkpoints]
        edit, events = run(server, relay, transcript="now make it at night")
        render_event = next(e for e in events if e["type"] == "render" and e["job_id"] == edit["job_id"])
        new, _ = run(server, relay, transcript="a lighthouse", mode="new")
        chosen, _ = run(server, relay, transcript="make it foggy", checkpoint="aaa-new-model.safetensors")
    assert edit["decision"]["mode"] == "edit", edit["error"]
    assert edit["render"]["checkpoint"] == "tiny-sd15-random.safetensors" and edit["render"]["sampler"] == "dpmpp_2m"
    # the render line has the picture's size while it renders, not only once it is saved
    assert (render_event["render"]["width"], render_event["render"]["height"]) == (96, 64)
    # automatic: the model used last, said so, not the alphabetically first file
    assert new["render"]["checkpoint"] == "tiny-sd15-random.safetensors"
    assert any("used 'tiny-sd15-random.safetensors' (SD 1.5) automatically (the model used last" in note
               for note in new["notes"]), new["notes"]
    # the person's own choice for a change wins
    assert chosen["decision"]["mode"] == "edit" and chosen["render"]["checkpoint"] == "aaa-new-model.safetensors"


def test_edit_of_names_any_picture_with_its_size_strength_and_chain(tmp_path, serve, comfy):
    server = serve(comfyui_url=comfy.url, **EDITS)
    with Relay(server) as relay:
        parent, _ = run(server, relay, prompt="a blue lake", width=128, height=96, seed=5)
        with Relay(server) as other_tab:
            child, _ = run(server, other_tab, transcript="with snow on the shore", edit_of=parent["job_id"], denoise=0.3)
            grandchild, _ = run(server, other_tab, transcript="make it a little darker")
        entry = requests.get(f"{server.url}/api/gallery/{grandchild['job_id']}", timeout=5).json()
        listed = requests.get(server.url + "/api/gallery", timeout=5).json()["entries"]
    assert child["decision"] == {"mode": "edit", "by": "request", "parent": parent["job_id"], "strength": 0.3}
    assert "a blue lake" in child["prompt"] and "snow on the shore" in child["prompt"]
    assert picture(tmp_path, child["job_id"]).size == (128, 96)  # the parent's size, not the settings' 96x64
    assert grandchild["decision"]["parent"] == child["job_id"] and grandchild["decision"]["strength"] == 0.35
    assert [link["job_id"] for link in entry["chain"]] == [child["job_id"], parent["job_id"]]
    assert entry["chain"][0]["strength"] == 0.3 and entry["chain"][1]["thumb_url"].endswith(".thumb.jpg")
    assert {e["job_id"]: e["edit_of"] for e in listed}[child["job_id"]] == parent["job_id"]
    # the same picture uploaded twice keeps one file in ComfyUI (same name, same bytes)
    assert len({(u["name"], u["bytes"]) for u in comfy.uploads}) == len({u["name"] for u in comfy.uploads})


def test_the_page_switch_and_run_again_on_an_edit(serve, comfy):
    server = serve(comfyui_url=comfy.url, **EDITS)
    with Relay(server) as relay:
        first, _ = run(server, relay, transcript="a lighthouse on a cliff")
        new, _ = run(server, relay, transcript="now make it at night", mode="new")
        assert new["decision"]["mode"] == "new" and new["decision"]["by"] == "page"
        assert new["decision"]["parent"] == first["job_id"]  # what the switch back would change
        edit, _ = run(server, relay, prompt=new["prompt"], edit_of=new["decision"]["parent"])
        again, _ = run(server, relay, prompt=edit["prompt"], edit_of=edit["edit_of"], denoise=edit["decision"]["strength"],
                       seed=edit["render"]["seed"])
    assert edit["decision"]["by"] == "request" and edit["edit_of"] == first["job_id"]
    assert again["stage"] == "done" and again["edit_of"] == first["job_id"] and again["render"]["seed"] == edit["render"]["seed"]


@pytest.mark.parametrize("body, status, code, words", [
    ({"prompt": "x", "edit_of": "0" * 32}, 404, "unknown_edit_of", "no picture with the job id"),
    ({"prompt": "x", "edit_of": "../etc/passwd"}, 404, "unknown_edit_of", "no picture"),
    ({"prompt": "x", "denoise": 1.5}, 400, "bad_denoise", "from 0.05 to 1"),
    ({"prompt": "x", "denoise": 0}, 400, "bad_denoise", "from 0.05 to 1"),
    ({"prompt": "x", "denoise": "lots"}, 400, "bad_denoise", "a number"),
    ({"prompt": "x", "mode": "edit"}, 400, "no_picture_to_change", "no picture in this tab"),
    ({"prompt": "x", "mode": "sideways"}, 400, "bad_mode", "new, edit"),
])
def test_bad_edit_requests_are_refused_with_the_reason(client, body, status, code, words):
    response = client.post("/api/jobs", json=body)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code and words in error["message"]


def test_a_parent_whose_picture_is_gone_is_named(tmp_path, serve, comfy):
    server = serve(comfyui_url=comfy.url, **EDITS)
    with Relay(server) as relay:
        parent, _ = run(server, relay, prompt="a green hill")
        (tmp_path / "instance" / "outputs" / f"{parent['job_id']}.png").unlink()
        response = requests.post(server.url + "/api/jobs", json={"prompt": "x", "edit_of": parent["job_id"]}, timeout=5)
    assert response.status_code == 410
    assert parent["job_id"] in response.json()["error"]["message"]


def test_a_damaged_parent_picture_is_named_before_anything_is_queued(tmp_path, serve, comfy):
    server = serve(comfyui_url=comfy.url, **EDITS)
    with Relay(server) as relay:
        parent, _ = run(server, relay, prompt="a green hill")
        png = tmp_path / "instance" / "outputs" / f"{parent['job_id']}.png"
        png.write_bytes(png.read_bytes()[:200])  # cut short, as a disk that filled up would leave it
        posted = len(comfy.posted)
        named = requests.post(server.url + "/api/jobs", json={"prompt": "x", "edit_of": parent["job_id"]}, timeout=5)
        follow_up, _ = run(server, relay, transcript="now make it at night")  # the tab's last picture
    assert named.status_code == 410
    assert named.json()["error"]["message"].startswith(f"the picture of job {parent['job_id']} cannot be read")
    assert follow_up["stage"] == "error" and follow_up["error"]["code"] == "edit_image_missing"
    assert parent["job_id"] in follow_up["error"]["message"] and "damaged" in follow_up["error"]["message"]
    assert len(comfy.posted) == posted and comfy.uploads == []  # nothing reached ComfyUI


@pytest.mark.parametrize("knobs, words", [
    (Knobs(missing_classes=("LoadImage",)), "lacks LoadImage, which changing a picture needs"),
    (Knobs(missing_classes=("LoadImage", "VAEEncode")), "lacks LoadImage and VAEEncode"),
    (Knobs(upload_status=413), "refused the upload of the picture to change (HTTP 413"),
    (Knobs(upload_status=404), "has no /upload/image"),
])
def test_a_comfyui_that_cannot_take_the_picture_says_which(serve, knobs, words):
    knobs.step_delay_s = 0.01
    with FakeComfyUI(knobs) as comfy:
        server = serve(comfyui_url=comfy.url, **EDITS)
        with Relay(server) as relay:
            parent, _ = run(server, relay, prompt="a yellow boat")
            edit, _ = run(server, relay, prompt="a yellow boat at night", edit_of=parent["job_id"])
    assert parent["stage"] == "done"
    assert edit["stage"] == "error" and words in edit["error"]["message"], edit["error"]
    assert comfy.url in edit["error"]["message"]


def test_comfyuis_validation_and_load_errors_are_relayed_plainly(tmp_path, serve, comfy):
    server = serve(comfyui_url=comfy.url, **EDITS)
    with Relay(server) as relay:
        parent, _ = run(server, relay, prompt="a white cat")
        comfy.inputs.clear()  # someone emptied ComfyUI's input folder between the upload and the run
        original = comfy.upload_image

        def lost_upload():
            answer = original()
            comfy.inputs.clear()
            return answer

        comfy.app.view_functions["upload_image"] = lost_upload
        gone, _ = run(server, relay, prompt="a white cat in the rain", edit_of=parent["job_id"])

        def unreadable_upload():
            answer = original()
            for key in comfy.inputs:
                comfy.inputs[key] = b"this is not a picture"
            return answer

        comfy.app.view_functions["upload_image"] = unreadable_upload
        broken, _ = run(server, relay, prompt="a white cat in the snow", edit_of=parent["job_id"])
    assert gone["stage"] == "error" and "cannot find the picture to change" in gone["error"]["message"]
    assert f"speech2image/{parent['job_id']}.png" in gone["error"]["message"]
    assert broken["stage"] == "error" and "LoadImage" in broken["error"]["message"]
    assert "cannot identify image file" in broken["error"]["message"]


@pytest.mark.skipif(not REAL_COMFYUI, reason="set SPEECH2IMAGE_TEST_REAL_COMFYUI_URL to a real ComfyUI to run this")
def test_real_comfyui_changes_a_picture(tmp_path, serve):
    server = serve(comfyui_url=REAL_COMFYUI, steps=2, width=128, height=128)
    with Relay(server) as relay:
        parent, _ = run(server, relay, prompt="a red barn in a field", seed=3)
        edit, _ = run(server, relay, transcript="now make it at night", denoise=0.3)
    assert parent["stage"] == "done" and edit["stage"] == "done", edit["error"]
    assert edit["edit_of"] == parent["job_id"] and edit["render"]["denoise"] == 0.3
    image = picture(tmp_path, edit["job_id"])
    assert image.size == (128, 128) and image.text["speech2image:edit_of"] == parent["job_id"]
    assert image.text["speech2image:strength"] == "0.3" and image.text["speech2image:width"] == "128"
    assert image.text["speech2image:seed"] == str(parent["render"]["seed"])  # the parent's seed, kept
    graph = json.loads(image.text["prompt"])
    assert any(n["class_type"] == "LoadImage" for n in graph.values())
    assert Image.open(io.BytesIO((tmp_path / "instance" / "outputs" / f"{parent['job_id']}.png").read_bytes())).size == (128, 128)
