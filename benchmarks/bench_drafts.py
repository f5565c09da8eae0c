"""Benchmark drafts (issue #25): Stop -> image for spoken requests with a pause before Stop, drafting off and on.

Starts ``app.py`` on a free loopback port (LLM and voice off) twice, with SPEECH2IMAGE_DRAFTS off then pause,
against a stand-in ComfyUI whose render takes a fixed time (the tests' fake ComfyUI, ``--render-s``
over ``--steps`` steps), or against a real ComfyUI (``--comfyui-url``; keep it tiny there: 128x128, 3-4
steps). Each held-out request (Piper, transcripts the other benchmarks do not use) is streamed over
/ws/audio at real-time pace, followed by ``--pause-s`` of quiet, then Stop; the tab's relay is read
until the job's image. Reports per mode the median Stop -> image, the share of jobs that took over
their draft, and render seconds wasted on thrown-away drafts per request; with a real ComfyUI also its
own render time per job (execution_start -> execution_success in its /history) and the ratio.

    .venv/bin/python benchmarks/bench_drafts.py [--render-s 3] [--pause-s 1.5] [--clips 8] [--json out.json]
    .venv/bin/python benchmarks/bench_drafts.py --comfyui-url http://127.0.0.1:8189 --steps 4 --size 128 --clips 3
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import websocket
from benchlib import ROOT, free_port
from PIL import Image

from tests.support import speech  # noqa: E402
from tests.support.audio_stream import AudioStream, pcm16k  # noqa: E402
from tests.support.data import CASES  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402

HELD_OUT = CASES[18:30]  # bench_stream.py speaks CASES[:14]; these it never does
LEAD_S = 0.3


def start_server(workdir: Path, comfyui_url: str, drafts: bool, steps: int, size: int):
    port = free_port()
    env = dict(os.environ, SPEECH2IMAGE_PORT=str(port), SPEECH2IMAGE_DATA_DIR=str(workdir / f"instance-{drafts}"),
               SPEECH2IMAGE_LOG_LEVEL="INFO", SPEECH2IMAGE_LLM_URL="off", SPEECH2IMAGE_TTS_ENGINE="off",
               SPEECH2IMAGE_COMFYUI_URL=comfyui_url, SPEECH2IMAGE_STEPS=str(steps), SPEECH2IMAGE_WIDTH=str(size),
               SPEECH2IMAGE_HEIGHT=str(size), SPEECH2IMAGE_DRAFTS="pause" if drafts else "off")
    log = open(workdir / f"server-{drafts}.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/api/health", timeout=2).json()["whisper"]["state"] == "ready":
                return server, log, url
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server did not get ready; see {workdir}/server-{drafts}.log")


def comfy_render_s(comfyui_url: str, prompt_id: str) -> float | None:
    """ComfyUI's own time for a prompt: execution_start -> execution_success in its history (ms stamps)."""
    entry = requests.get(f"{comfyui_url}/history/{prompt_id}", timeout=10).json().get(prompt_id) or {}
    stamps = {kind: data.get("timestamp") for kind, data in entry.get("status", {}).get("messages", [])}
    if stamps.get("execution_start") and stamps.get("execution_success"):
        return (stamps["execution_success"] - stamps["execution_start"]) / 1000
    return None


def one_request(url: str, wav: Path) -> dict:
    """Speak, pause, Stop; read the tab's relay until the job's image (Stop -> image) and its end."""
    session = uuid.uuid4().hex
    relay = websocket.create_connection(url.replace("http", "ws", 1) + f"/ws?session={session}", timeout=120)
    json.loads(relay.recv())  # hello: subscribed
    stream = AudioStream(url, session)
    try:
        assert stream.until("ready", 30)["type"] == "ready"
        stream.play(pcm16k(wav))
        stopped = time.monotonic()
        stream.send({"type": "stop"})
        job = stream.until("job", 120)
        if job["type"] != "job":
            return {"error": job}
        job_id, image_at, end = job["snapshot"]["job_id"], None, None
        while end is None:
            event = json.loads(relay.recv())
            if event.get("job_id") != job_id:
                continue
            if event["type"] == "image":
                image_at = time.monotonic()
            if event["type"] == "stage" and event["stage"] in ("done", "error", "cancelled", "prompt_ready"):
                end = event["snapshot"]
        row = {"job_id": job_id, "stop_to_image_s": image_at - stopped if image_at else None, "stage": end["stage"],
               "draft": end.get("draft") or {}}
        return row
    finally:
        stream.close()
        relay.close()


def job_prompt_id(url: str, job_id: str) -> str | None:
    """The ComfyUI prompt that made the job's picture, from its PNG's metadata (not ComfyUI's newest prompt,
    which may be an interrupted draft or sketch)."""
    answer = requests.get(f"{url}/outputs/{job_id}.png", timeout=10)
    if answer.status_code != 200:
        return None
    with Image.open(io.BytesIO(answer.content)) as image:
        return image.text.get("speech2image:comfyui_prompt_id")  # text chunks: str values as they are


def run_mode(workdir: Path, comfyui_url: str, drafts: bool, wavs: list[Path], args, real: bool) -> list[dict]:
    server, log, url = start_server(workdir, comfyui_url, drafts, args.steps, args.size)
    try:
        one_request(url, wavs[0])  # warm-up (the model loads in ComfyUI, the first passes)
        rows = []
        for wav in wavs:
            row = one_request(url, wav)
            if real:
                prompt_id = job_prompt_id(url, row["job_id"]) if row.get("job_id") else None
                row["comfy_render_s"] = comfy_render_s(comfyui_url, prompt_id) if prompt_id else None
                queue = requests.get(f"{comfyui_url}/queue", timeout=10).json()
                row["comfy_queue_after"] = len(queue["queue_running"]) + len(queue["queue_pending"])
            rows.append(row)
            time.sleep(0.5)
        row_metrics = requests.get(url + "/metrics", timeout=10).text
        rows.append({"metrics": [line for line in row_metrics.splitlines() if line.startswith("speech2image_draft")]})
        return rows
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-s", type=float, default=3.0, help="the stand-in ComfyUI's render time")
    parser.add_argument("--pause-s", type=float, default=1.5, help="quiet after each request before Stop")
    parser.add_argument("--clips", type=int, default=8, help="held-out requests per mode")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--comfyui-url", default="", help="a real ComfyUI instead of the stand-in")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-drafts-"))
    print(f"working in {workdir} (server logs there)", flush=True)
    import logging
    logging.disable(logging.INFO)  # the in-process fake ComfyUI's request lines
    fake = None
    comfyui_url = args.comfyui_url
    if not comfyui_url:
        fake = FakeComfyUI(Knobs(step_delay_s=args.render_s / args.steps, node_delay_s=0.0, previews=False)).__enter__()
        comfyui_url = fake.url
    wavs = [speech.pad_wav(speech.piper_wav(text, workdir / f"{i}.wav"), workdir / f"{i}-padded.wav", LEAD_S,
                           args.pause_s) for i, text in enumerate(HELD_OUT[:args.clips])]
    result: dict = {"render_s": None if args.comfyui_url else args.render_s, "pause_s": args.pause_s, "modes": {}}
    try:
        for drafts in (False, True):
            rows = run_mode(workdir, comfyui_url, drafts, wavs, args, real=bool(args.comfyui_url))
            metrics = rows.pop()["metrics"]
            done = [r for r in rows if r.get("stop_to_image_s") is not None]
            waits = [r["stop_to_image_s"] for r in done]
            renders = [r["comfy_render_s"] for r in done if r.get("comfy_render_s")]
            result["modes"]["on" if drafts else "off"] = {
                "stop_to_image_median_s": round(statistics.median(waits), 3) if waits else None,
                "adopted": sum(1 for r in rows if r["draft"].get("adopted")), "requests": len(rows),
                "wasted_render_s_per_request": round(sum(r["draft"].get("wasted_s", 0.0) for r in rows) / len(rows), 3),
                "comfy_render_median_s": round(statistics.median(renders), 3) if renders else None,
                "ratio_median": (round(statistics.median(r["stop_to_image_s"] / r["comfy_render_s"] for r in done
                                                         if r.get("comfy_render_s")), 3) if renders else None),
                "metrics": metrics, "rows": rows,
            }
    finally:
        if fake is not None:
            fake.__exit__(None, None, None)

    off, on = result["modes"]["off"], result["modes"]["on"]
    render = f"a {args.render_s:g} s stand-in render" if fake else f"ComfyUI at {args.comfyui_url}"
    print(f"drafts: {len(wavs)} held-out spoken requests, {args.pause_s:g} s pause before Stop, {render}")
    for name, mode in (("off", off), ("on", on)):
        print(f"  drafting {name:>3}: Stop->image median {mode['stop_to_image_median_s']} s; adopted "
              f"{mode['adopted']}/{mode['requests']}; wasted draft render {mode['wasted_render_s_per_request']} s "
              f"per request" + (f"; ComfyUI's own render median {mode['comfy_render_median_s']} s, Stop->image / "
                                f"render median {mode['ratio_median']}" if mode["comfy_render_median_s"] else ""))
    if off["stop_to_image_median_s"] and on["stop_to_image_median_s"]:
        print(f"  on / off: {on['stop_to_image_median_s'] / off['stop_to_image_median_s']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
