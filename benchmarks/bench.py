"""End-to-end benchmark: spoken requests through the real app, stage by stage.

Starts `app.py` as its own process (so its memory is measured alone), speaks a canonical
set of requests with Piper and espeak-ng, uploads each as a browser would (webm/opus,
POST /api/jobs) and follows the job on /ws. Reports per stage (ASR, prompt writing,
ComfyUI queue + render, TTS) and end to end: p50, p95, max; the ASR word error rate on
the set; orchestration overhead (end to end minus the stages, with speech overlapping
the render); relay latency (a ComfyUI progress frame -> the page's websocket, fake ComfyUI
only); the server's peak RSS. Writes a JSON file and a PNG chart of the stage breakdown.
Needs the test set-up (jiwer, espeak-ng, ffmpeg): scripts/test.sh installs it.

    .venv/bin/python benchmarks/bench.py                       # against the fake ComfyUI from the tests
    .venv/bin/python benchmarks/bench.py --comfyui-url http://127.0.0.1:8188 --llm-url http://localhost:1234/v1
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import websocket
from benchlib import ROOT, follow_job, free_port, peak_rss_mb, require, summary
from PIL import Image, ImageDraw

# The word error rate and the espeak-ng/opus clips use what the tests use, beyond the app's own set-up.
require(modules=("jiwer",), programs=("espeak-ng", "ffmpeg"))

import jiwer  # noqa: E402

from tests.support import speech  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402
from tests.support.speech import NORMALIZE  # noqa: E402

# (engine, what is said): short and long, styles, fillers, a follow-up.
REQUESTS = [
    ("piper", "a red fox in the snow"),
    ("piper", "um can you draw me a lighthouse on a rocky coast during a storm"),
    ("piper", "an astronaut riding a horse on the moon in the style of an oil painting"),
    ("piper", "a bowl of noodle soup with a boiled egg, watercolor"),
    ("piper", "uh I would like to see a small wooden cabin by a quiet lake with mountains behind it "
              "and a clear starry sky above, very peaceful"),
    ("piper", "a cyberpunk city at night with neon signs and flying cars, cinematic"),
    ("piper", "a golden retriever puppy playing in the autumn leaves"),
    ("piper", "now make it at night"),
    ("espeak", "a steam train crossing a stone bridge"),
    ("espeak", "please paint a portrait of an old fisherman with a grey beard"),
    ("espeak", "a cup of coffee on a wooden table next to an open book"),
    ("espeak", "a castle on a hill at sunset, fantasy art"),
]
STAGES = ("asr", "prompt", "render", "speech", "save")
COLORS = {"asr": (76, 139, 245), "prompt": (245, 165, 36), "render": (48, 164, 108), "speech": (155, 89, 182),
          "save": (120, 120, 120), "overhead": (229, 72, 77)}


def chart(rows: list[dict], path: Path) -> None:
    """Horizontal bars per job: ASR, prompt, then render with speech beside it, save, overhead."""
    width, bar_h, gap, left, top = 1000, 22, 8, 60, 50
    longest = max(r["e2e"] for r in rows) or 1.0
    scale = (width - left - 20) / longest
    image = Image.new("RGB", (width, top + len(rows) * (bar_h + gap) + 60), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((left, 15), f"End to end per job (longest {longest:.2f} s); speech runs beside the render", fill=(0, 0, 0))
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        draw.text((5, y + 5), f"#{i + 1}", fill=(0, 0, 0))
        x = left
        for stage in ("asr", "prompt"):
            w = row["timings"].get(stage, 0) * scale
            draw.rectangle([x, y, x + w, y + bar_h], fill=COLORS[stage])
            x += w
        render_w = row["timings"].get("render", 0) * scale
        speech_w = row["timings"].get("speech", 0) * scale
        draw.rectangle([x, y, x + render_w, y + bar_h * 0.6], fill=COLORS["render"])
        draw.rectangle([x, y + bar_h * 0.6, x + speech_w, y + bar_h], fill=COLORS["speech"])
        x += max(render_w, speech_w)
        for stage, value in (("save", row["timings"].get("save", 0)), ("overhead", row["overhead"])):
            w = max(0.0, value * scale)
            draw.rectangle([x, y, x + w, y + bar_h], fill=COLORS[stage])
            x += w
    y = top + len(rows) * (bar_h + gap) + 15
    x = left
    for name, color in COLORS.items():
        draw.rectangle([x, y, x + 14, y + 14], fill=color)
        draw.text((x + 18, y + 2), name, fill=(0, 0, 0))
        x += 110
    image.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description="speech2image end-to-end benchmark")
    parser.add_argument("--rounds", type=int, default=2, help="times the request set is sent (N jobs = 12 x rounds)")
    parser.add_argument("--comfyui-url", help="a real ComfyUI; default: the fake one from the tests")
    parser.add_argument("--llm-url", default="off", help="an OpenAI-compatible server; default: the offline rewriter")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-ms", type=float, default=50, help="fake ComfyUI: time per sampler step")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import logging
    logging.disable(logging.INFO)  # the in-process fake ComfyUI's request lines
    work = Path(tempfile.mkdtemp(prefix="bench-"))

    clips = []
    for i, (engine, text) in enumerate(REQUESTS):
        wav = (speech.piper_wav if engine == "piper" else speech.espeak_wav)(text, work / f"req{i}.wav")
        clips.append((engine, text, speech.encode(wav, "webm"), speech.wav_seconds(wav)))

    fake = None
    if not args.comfyui_url:
        fake = FakeComfyUI(Knobs(step_delay_s=args.step_ms / 1000)).__enter__()
    comfy_url = args.comfyui_url or fake.url
    port = free_port()
    env = dict(os.environ, SPEECH2IMAGE_PORT=str(port), SPEECH2IMAGE_DATA_DIR=str(work / "instance"),
               SPEECH2IMAGE_COMFYUI_URL=comfy_url, SPEECH2IMAGE_LLM_URL=args.llm_url,
               SPEECH2IMAGE_STEPS=str(args.steps), SPEECH2IMAGE_LOG_LEVEL="WARNING")
    log_file = open(work / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT, stdout=log_file,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    rows, latencies, heard, said = [], [], [], []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                health = requests.get(url + "/api/health", timeout=2).json()
                if health["whisper"]["state"] == "ready" and health["tts"]["state"] in ("ready", "off"):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        session = uuid.uuid4().hex
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws?session={session}", timeout=120)
        json.loads(ws.recv())  # hello
        for round_number in range(args.rounds + 1):  # round 0 warms everything up and is not counted
            for engine, text, clip, seconds in clips:
                with open(clip, "rb") as f:
                    sent = time.time()
                    job_id = requests.post(url + "/api/jobs", files={"audio": (clip.name, f, "audio/webm")},
                                           data={"session": session}, timeout=30).json()["job_id"]
                event, progress, now = follow_job(ws, job_id)
                snapshot = event["snapshot"]
                if round_number == 0:
                    continue
                if snapshot["stage"] != "done":
                    print(f"job {job_id} ended {snapshot['stage']}: {snapshot.get('error')}", file=sys.stderr)
                    continue
                timings = snapshot["timings"]
                e2e = now - sent
                stages = (timings.get("asr", 0) + timings.get("prompt", 0)
                          + max(timings.get("render", 0), timings.get("speech", 0)) + timings.get("save", 0))
                rows.append({"engine": engine, "said": text, "heard": snapshot["transcript"], "audio_s": seconds,
                             "timings": timings, "e2e": e2e, "overhead": e2e - stages})
                said.append(text)
                heard.append(snapshot["transcript"] or "")
                if fake is not None:
                    prompt_id = fake.posted[-1]["prompt_id"]
                    sent_at = {step: t for pid, step, t in fake.progress_sent if pid == prompt_id}
                    latencies += [t - sent_at[step] for step, t in progress if step in sent_at]
        ws.close()
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=20)
        log_file.close()
        if fake is not None:
            fake.__exit__(None, None, None)

    result = {
        "jobs": len(rows), "requests": len(REQUESTS), "comfyui": args.comfyui_url or f"fake ({args.steps} steps x {args.step_ms:g} ms)",
        "llm": args.llm_url, "cpus": os.cpu_count(),
        "stages_s": {stage: summary([r["timings"][stage] for r in rows if stage in r["timings"]]) for stage in STAGES},
        "end_to_end_s": summary([r["e2e"] for r in rows]),
        "overhead_ms": summary([r["overhead"] for r in rows], 1000),
        "relay_latency_ms": summary(latencies, 1000) if latencies else None,
        "asr_wer": {engine: round(jiwer.wer([r["said"] for r in rows if r["engine"] == engine],
                                            [r["heard"] or "" for r in rows if r["engine"] == engine],
                                            reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE), 3)
                    for engine in ("piper", "espeak")},
        "asr_wer_all": round(jiwer.wer(said, heard, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE), 3),
        "peak_rss_mb": round(rss, 1),
        "jobs_detail": rows,
    }
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    chart(rows, args.out / "bench.png")

    print(f"{result['jobs']} jobs ({len(REQUESTS)} spoken requests x {args.rounds}), ComfyUI: {result['comfyui']}, "
          f"LLM: {args.llm_url}, {result['cpus']} CPUs")
    print(f"{'stage':14}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for stage, s in result["stages_s"].items():
        print(f"{stage:14}{s['p50']:>9}{s['p95']:>9}{s['max']:>9}")
    e = result["end_to_end_s"]
    print(f"{'end to end':14}{e['p50']:>9}{e['p95']:>9}{e['max']:>9}")
    o = result["overhead_ms"]
    print(f"overhead (end to end minus stages): p50 {o['p50']} ms, p95 {o['p95']} ms, max {o['max']} ms")
    if result["relay_latency_ms"]:
        r = result["relay_latency_ms"]
        print(f"relay latency ComfyUI -> page: p50 {r['p50']} ms, p95 {r['p95']} ms, max {r['max']} ms")
    print(f"ASR WER: {result['asr_wer']} (all {result['asr_wer_all']}); server peak RSS {result['peak_rss_mb']} MB")
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
