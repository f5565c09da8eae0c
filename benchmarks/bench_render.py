"""Benchmark the render stage through the real app: relay latency and our overhead per job.

Starts the app (werkzeug, threaded) and the fake ComfyUI from the tests in this
process, runs N jobs from a prompt over HTTP, follows them on /ws like a browser,
and compares with the fake ComfyUI's own clock:

- relay latency: ComfyUI sending a `progress` frame -> the page's websocket receiving it;
- overhead: the job's time seen by the page minus ComfyUI's own time for the prompt.

    .venv/bin/python benchmarks/bench_render.py [--jobs 20] [--steps 20] [--step-ms 50] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import websocket
from benchlib import follow_job, summary

from speech2image import create_app  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402
from tests.support.live import LiveServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-ms", type=float, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import logging
    logging.disable(logging.INFO)
    data_dir = tempfile.mkdtemp(prefix="bench-render-")
    latencies, overheads, totals, comfy_times = [], [], [], []
    with FakeComfyUI(Knobs(step_delay_s=args.step_ms / 1000, previews=True)) as comfy:
        app = create_app({"data_dir": data_dir, "comfyui_url": comfy.url, "llm_url": "off", "preload": False,
                          "tts_engine": "off",  # the render alone: no voice competing for the 2 cores
                          "steps": args.steps, "width": 512, "height": 512, "log_level": "WARNING"})
        with LiveServer(app) as server:
            session = uuid.uuid4().hex
            ws = websocket.create_connection(f"ws://127.0.0.1:{server.server.server_port}/ws?session={session}")
            json.loads(ws.recv())  # hello
            for i in range(args.jobs):
                sent_at = time.time()
                job_id = requests.post(server.url + "/api/jobs", json={"prompt": f"bench {i}", "session": session,
                                                                       "seed": i}).json()["job_id"]
                event, received, done_at = follow_job(ws, job_id)
                assert event["stage"] == "done", event
                prompt_id = comfy.posted[-1]["prompt_id"]
                sent = {step: t for pid, step, t in comfy.progress_sent if pid == prompt_id}
                latencies += [(t - sent[step]) * 1000 for step, t in received if step in sent]
                timeline = comfy.timeline[prompt_id]
                comfy_s = timeline["finished"] - timeline["received"]
                total_s = done_at - sent_at
                comfy_times.append(comfy_s * 1000)
                totals.append(total_s * 1000)
                overheads.append((total_s - comfy_s) * 1000)
            ws.close()
    result = {"jobs": args.jobs, "steps": args.steps, "step_ms": args.step_ms,
              "relay_latency_ms": summary(latencies), "overhead_ms": summary(overheads),
              "job_ms": summary(totals), "comfyui_ms": summary(comfy_times)}
    print(f"{args.jobs} jobs, {args.steps} steps of {args.step_ms:g} ms each, 512x512 PNG, previews on")
    for key in ("relay_latency_ms", "overhead_ms", "job_ms", "comfyui_ms"):
        s = result[key]
        print(f"  {key:18} p50 {s['p50']:8.2f}   p95 {s['p95']:8.2f}   max {s['max']:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
