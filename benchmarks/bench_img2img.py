"""Benchmark changing a picture (img2img) against making a new one, on the same ComfyUI.

Starts the app in this process against a ComfyUI (the tests' fake one unless --comfyui-url names a
real one) and, for each round, makes a new picture, then changes it at each strength (same seed,
same prompt words plus a change, same steps), timing both from POST /api/jobs to "done" as the page
sees it. Reports:

- the extra time an edit costs over a new picture (the upload of the parent, LoadImage + VAEEncode;
  the sampler itself runs only ``strength`` x steps in img2img, so the render's share is reported too);
- how much of the picture an edit keeps: the mean absolute pixel difference (0-255) between the edit
  and its parent, per strength.

    .venv/bin/python scripts/bench_img2img.py [--rounds 5] [--steps 4] [--size 128] [--comfyui-url URL]
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import uuid
from pathlib import Path

import requests
import websocket
from benchlib import follow_job, summary
from PIL import Image, ImageChops, ImageStat

from speech2image import create_app  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402
from tests.support.live import LiveServer  # noqa: E402

STRENGTHS = (0.3, 0.55, 0.8)


def mean_difference(a: bytes, b: bytes) -> float:
    first, second = (Image.open(io.BytesIO(x)).convert("RGB") for x in (a, b))
    return sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3


def run_job(server, ws, body: dict) -> tuple[dict, float]:
    started = time.perf_counter()
    job_id = requests.post(server.url + "/api/jobs", json=body, timeout=30).json()["job_id"]
    event, _, _ = follow_job(ws, job_id)
    assert event["stage"] == "done", event
    return event["snapshot"], time.perf_counter() - started


def bench(comfy_url: str, rounds: int, steps: int, size: int) -> dict:
    data_dir = tempfile.mkdtemp(prefix="bench-img2img-")
    app = create_app({"data_dir": data_dir, "comfyui_url": comfy_url, "llm_url": "off", "preload": False,
                      "tts_engine": "off", "steps": steps, "width": size, "height": size, "log_level": "WARNING"})
    new_s, edit_s = [], {s: [] for s in STRENGTHS}
    render_new, render_edit = [], {s: [] for s in STRENGTHS}
    difference = {s: [] for s in STRENGTHS}
    with LiveServer(app) as server:
        session = uuid.uuid4().hex
        ws = websocket.create_connection(f"{server.url.replace('http', 'ws', 1)}/ws?session={session}")
        json.loads(ws.recv())  # hello
        # one job first: the checkpoint loads (and is cached) before anything is timed
        run_job(server, ws, {"prompt": "warm-up", "session": session, "seed": 1})
        for i in range(rounds):
            parent, took = run_job(server, ws, {"prompt": f"a red barn in a field, round {i}", "session": session,
                                                "seed": 1000 + i})
            new_s.append(took)
            render_new.append(parent["timings"]["render"])
            parent_png = requests.get(server.url + parent["image_url"], timeout=10).content
            for strength in STRENGTHS:
                edit, took = run_job(server, ws, {"prompt": f"a red barn in a field at night, round {i}",
                                                  "session": session, "edit_of": parent["job_id"],
                                                  "denoise": strength})
                assert edit["render"]["seed"] == parent["render"]["seed"]
                edit_s[strength].append(took)
                render_edit[strength].append(edit["timings"]["render"])
                png = requests.get(server.url + edit["image_url"], timeout=10).content
                difference[strength].append(mean_difference(parent_png, png))
        ws.close()
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {
        "rounds": rounds, "steps": steps, "size": size, "comfyui": comfy_url,
        "new_picture_s": summary(new_s), "new_render_s": summary(render_new),
        "edit_s": {str(s): summary(v) for s, v in edit_s.items()},
        "edit_render_s": {str(s): summary(v) for s, v in render_edit.items()},
        "extra_s_per_edit": {str(s): round(mean(v) - mean(new_s), 3) for s, v in edit_s.items()},
        "mean_pixel_difference": {str(s): round(mean(v), 1) for s, v in difference.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--comfyui-url", help="a real ComfyUI; default: the tests' fake one (50 ms a step)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import logging
    logging.disable(logging.INFO)
    if args.comfyui_url:
        result = bench(args.comfyui_url, args.rounds, args.steps, args.size)
    else:
        with FakeComfyUI(Knobs(step_delay_s=0.05)) as comfy:
            result = bench(comfy.url, args.rounds, args.steps, args.size)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
