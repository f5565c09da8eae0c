"""Operators' view: /metrics in Prometheus format and one structured log line per job."""
from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import dead_url
from .support.relay import run


def samples(text: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_jobs_stages_and_comfyui(serve, caplog):
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as comfy:
        server = serve(comfyui_url=comfy.url)
        with caplog.at_level(logging.INFO, logger="speech2image.jobs.pipeline"):
            run(server, prompt="a red kite")
            run(server, prompt="x", checkpoint="nope.safetensors")
            text = server.app.test_client().get("/metrics").get_data(as_text=True)
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job_finished ")]
    values = samples(text)
    assert values[("speech2image_jobs_total", (("outcome", "done"),))] == 1
    assert values[("speech2image_jobs_total", (("outcome", "error"),))] == 1
    assert values[("speech2image_jobs_in_flight", ())] == 0
    assert values[("speech2image_stage_seconds_count", (("stage", "render"),))] == 2
    assert values[("speech2image_stage_seconds_count", (("stage", "total"),))] == 2
    assert values[("speech2image_comfyui_up", (("url", comfy.url),))] == 1
    records = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert [r["outcome"] for r in records] == ["done", "error"]
    assert records[0]["timings"]["render"] > 0 and records[1]["error"] == "comfyui_rejected"
    assert "a red kite" not in " ".join(lines)  # prompts and transcripts stay out of the log line


def test_comfyui_down_shows_in_metrics(make_app):
    url = dead_url("")
    text = make_app(comfyui_url=url).test_client().get("/metrics").get_data(as_text=True)
    assert samples(text)[("speech2image_comfyui_up", (("url", url),))] == 0
