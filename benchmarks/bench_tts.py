"""Benchmark the spoken caption: load time, synthesis time and real-time factor per engine,
and the time saved by speaking while ComfyUI renders.

Coqui is timed on a tiny randomly initialised VITS (nothing is downloaded), so its numbers
show the engine's overhead, not a real voice's speed.

    .venv/bin/python benchmarks/bench_tts.py [--repeats 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import benchlib  # noqa: F401  (puts the project on the path)
import requests

from speech2image import create_app  # noqa: E402
from speech2image.speech.tts import Speaker  # noqa: E402
from tests.support.coqui import tiny_vits  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402
from tests.support.live import LiveServer  # noqa: E402
from tests.support.relay import Relay, finished  # noqa: E402

CAPTIONS = [
    "Here is a red fox sitting in a snowy forest at sunrise.",
    "Here is a lighthouse on a rocky coast during a storm.",
    "Here is a small wooden cabin by a quiet lake with mountains behind it and a clear starry sky above.",
]


def time_engine(speaker: Speaker, repeats: int) -> dict:
    started = time.perf_counter()
    speaker.start_loading()
    speaker.speak("Warm up.")
    load_s = speaker.status().get("load_s", time.perf_counter() - started)
    synth, rtf = [], []
    for _ in range(repeats):
        for caption in CAPTIONS:
            spoken = speaker.speak(caption)
            synth.append(spoken.elapsed_s)
            rtf.append(spoken.elapsed_s / spoken.duration_s)
    return {"load_s": round(load_s, 2), "synth_median_s": round(statistics.median(synth), 3),
            "synth_max_s": round(max(synth), 3), "rtf_median": round(statistics.median(rtf), 3)}


def overlap(jobs: int, step_ms: float) -> dict:
    import logging
    logging.disable(logging.INFO)
    results = []
    with FakeComfyUI(Knobs(step_delay_s=step_ms / 1000)) as comfy:
        app = create_app({"data_dir": tempfile.mkdtemp(), "comfyui_url": comfy.url, "llm_url": "off",
                          "steps": 10, "width": 256, "height": 256, "log_level": "WARNING"})
        with LiveServer(app) as server:
            app.extensions["speech2image"].voices.get().speak("Warm up.")
            relay = Relay(server, session=uuid.uuid4().hex)
            for i in range(jobs):
                requests.post(server.url + "/api/jobs", json={"prompt": f"p{i}", "caption": CAPTIONS[i % 3],
                                                              "session": relay.session})
                relay.events.clear()
                timings = relay.until(finished, timeout=60)[-1]["snapshot"]["timings"]
                results.append(timings)
            relay.close()
    render = [t["render"] for t in results]
    speech = [t["speech"] for t in results]
    total = [t["total"] for t in results]
    saved = [r + s - t for r, s, t in zip(render, speech, total)]
    return {"jobs": jobs, "render_median_s": round(statistics.median(render), 3),
            "speech_median_s": round(statistics.median(speech), 3),
            "total_median_s": round(statistics.median(total), 3),
            "saved_median_s": round(statistics.median(saved), 3)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--step-ms", type=float, default=150)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {"piper": time_engine(Speaker("piper"), args.repeats),
              "espeak": time_engine(Speaker("espeak"), args.repeats)}
    folder = Path(tempfile.mkdtemp())
    model_path, config_path = tiny_vits(folder)
    result["coqui (tiny random VITS)"] = time_engine(
        Speaker("coqui", coqui_model_path=str(model_path), coqui_config_path=str(config_path)), args.repeats)
    result["overlap"] = overlap(args.jobs, args.step_ms)
    for engine, numbers in result.items():
        print(f"{engine:26} " + "  ".join(f"{k} {v}" for k, v in numbers.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
