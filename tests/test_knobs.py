"""The knob table (config.KNOBS) is the one place a setting is declared: the API's checks for a job
and for a saved default, the settings answer and the page's inputs all come from it."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from speech2image.config import JOB_KNOBS, KNOBS, Settings

from .support.relay import run


def test_every_knob_is_a_documented_setting_with_a_consistent_range():
    fields = Settings.__dataclass_fields__
    for name, knob in KNOBS.items():
        assert name in fields and knob.label and knob.section in ("llm", "comfyui", "speech")
        default = getattr(Settings(), name)
        assert knob.parse(default, "saved") == default, name  # every default passes its own check
        if knob.kind is not str:  # numbers, and the strengths of a list (LoRAs)
            assert knob.low <= knob.high
            assert knob.keep in (None, ()) or not knob.low <= knob.keep <= knob.high, name  # 'keep' is outside the range


@pytest.mark.parametrize("value,parsed", [("12", 12), ("1e1", 10), (" 7 ", 7), (12.0, 12), ("nan", None),
                                          ("inf", None), ("1.5", None), (True, None), ("", None)])
def test_numbers_from_forms_and_json_parse_alike(value, parsed):
    knob = KNOBS["steps"]
    if parsed is None:
        with pytest.raises(ValueError, match="'steps' must be a whole number from 1 to 200"):
            knob.parse(value, "job")
    else:
        assert knob.parse(value, "job") == parsed


@pytest.mark.parametrize("name", [n for n, k in KNOBS.items() if k.kind in (int, float)])
def test_job_and_saved_ranges_come_from_the_same_knob(client, name):
    knob = KNOBS[name]
    saved = client.post("/api/settings", json={name: knob.high})
    assert saved.status_code == 200, saved.get_json()
    too_big = client.post("/api/settings", json={name: knob.high + 1}).get_json()["error"]
    job_too_big = client.post("/api/jobs", json={"prompt": "x", knob.job: knob.high + 1}).get_json()["error"]
    assert too_big["code"] == "bad_setting" and job_too_big["code"] == f"bad_{knob.job}"
    high = f"{knob.high:g}" if isinstance(knob.high, float) else str(knob.high)
    assert f"to {high}" in too_big["message"] and f"to {high}" in job_too_big["message"]
    # the 'keep' value (0: the workflow's own, -1: random) is a saved default; for one job only where it says so
    assert client.post("/api/settings", json={name: knob.keep}).status_code == 200
    keep_for_job = client.post("/api/jobs", json={"prompt": "x", knob.job: knob.keep})
    assert (keep_for_job.status_code == 202) == knob.keep_in_job, keep_for_job.get_json()


def test_settings_answer_and_page_inputs_are_drawn_from_the_table(client):
    answer = client.get("/api/settings").get_json()
    assert [k["name"] for k in answer["knobs"]] == list(KNOBS) == answer["editable"]
    steps = next(k for k in answer["knobs"] if k["name"] == "steps")
    assert (steps["low"], steps["high"], steps["keep"]) == (1, 200, 0) and "workflow" in steps["keep_means"]
    preset = next(k for k in answer["knobs"] if k["name"] == "llm_preset")
    assert preset["choices"] == ["creative", "balanced", "focused", "precise"]  # our stage's own list
    page = client.get("/").get_data(as_text=True)
    for field, knob in JOB_KNOBS.items():
        assert f'data-job="{field}"' in page, field
        if knob.kind in (int, float):
            job_input = re.search(rf'<input id="[\w-]+" data-job="{field}" [^>]*>', page).group(0)
            assert f'max="{knob.high}"' in job_input
            low = knob.keep if knob.keep_in_job else knob.low
            assert f'min="{low}"' in job_input, job_input
            saved_input = re.search(rf'<input name="{knob.name}" [^>]*>', page).group(0)
            assert f'min="{min(knob.low, knob.keep)}"' in saved_input, saved_input
    for engine in ("piper", "coqui", "espeak", "off"):  # the engines come from the voice stage, not the template
        assert f'<option value="{engine}">' in page


def test_sampler_end_to_end(serve, comfy):
    """The sampler was added through the table: chosen from ComfyUI's list, checked, saved, shown on the
    page, sent in the graph and recorded in the PNG."""
    server = serve(comfyui_url=comfy.url)
    app = server.app
    client = app.test_client()
    offered = client.get("/api/comfyui").get_json()["choices"]["sampler"]
    assert "dpmpp_2m" in offered and "euler_ancestral" in offered  # ComfyUI 0.3.64's /object_info/KSampler
    assert 'data-job="sampler"' in client.get("/").get_data(as_text=True)
    refused = client.post("/api/settings", json={"sampler": "euler; rm -rf /"}).get_json()["error"]
    assert refused["code"] == "bad_setting" and "'sampler'" in refused["message"]
    assert client.post("/api/settings", json={"sampler": "euler_ancestral"}).get_json()["settings"]["sampler"] \
        == "euler_ancestral"
    saved, _ = run(server, prompt="a heron at dawn")
    chosen, _ = run(server, prompt="a heron at dusk", sampler="dpmpp_2m")
    png = Image.open(io.BytesIO(app.test_client().get(chosen["image_url"]).data))
    sent = [body["prompt"]["3"]["inputs"]["sampler_name"] for body in comfy.posted]
    assert sent == ["euler_ancestral", "dpmpp_2m"]  # the saved default, then one job's own choice
    assert saved["render"]["sampler"] == "euler_ancestral" and chosen["render"]["sampler"] == "dpmpp_2m"
    assert png.text["speech2image:sampler"] == "dpmpp_2m"
