"""Benchmark the speech-recognition stage through the real server.

Starts ``app.py`` on a free loopback port, generates spoken clips with Piper,
warms the model up, then posts each clip several times to /api/transcribe.
Reports model load time, per-clip transcription time and real-time factor, and
the server's peak RSS (VmHWM). Needs the test requirements (jiwer, ffmpeg): scripts/test.sh installs them.

    .venv/bin/python benchmarks/bench_asr.py [--repeats 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import ROOT, free_port, peak_rss_mb, require

require(modules=("jiwer",), programs=("ffmpeg",))  # tests.support.speech scores with jiwer; clips go to webm

from tests.support import speech  # noqa: E402  (the same clip maker the tests use)

CLIPS = [
    "a cat wearing a red hat",
    "a red fox sitting in a snowy forest at sunrise",
    "draw me a lighthouse on a rocky coast during a storm with huge waves",
    "a small wooden cabin by a quiet lake with mountains behind it and a clear starry sky above",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-asr-"))
    port = free_port()
    env = dict(os.environ, SPEECH2IMAGE_PORT=str(port), SPEECH2IMAGE_DATA_DIR=str(workdir / "instance"),
               SPEECH2IMAGE_LOG_LEVEL="WARNING")
    started = time.perf_counter()
    server_log = open(workdir / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT,
                              stdout=server_log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        whisper = None
        while time.perf_counter() - started < 300:
            try:
                whisper = requests.get(url + "/api/health", timeout=2).json()["whisper"]
                if whisper["state"] in ("ready", "error"):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        ready_s = time.perf_counter() - started
        if not whisper or whisper["state"] != "ready":
            print("Whisper did not load:", whisper, file=sys.stderr)
            return 1

        clips = []
        for i, text in enumerate(CLIPS):
            wav = speech.piper_wav(text, workdir / f"clip{i}.wav")
            clips.append((text, speech.encode(wav, "webm"), speech.wav_seconds(wav)))

        def post(path):
            with open(path, "rb") as f:
                t0 = time.perf_counter()
                r = requests.post(url + "/api/transcribe", files={"audio": (path.name, f, "audio/webm")}, timeout=120)
                r.raise_for_status()
                return r.json(), time.perf_counter() - t0

        post(clips[0][1])  # warm-up: first call pays for lazy allocations
        rows = []
        for text, path, seconds in clips:
            server_times, round_trips = [], []
            for _ in range(args.repeats):
                body, rt = post(path)
                server_times.append(body["elapsed_s"])
                round_trips.append(rt)
            median = statistics.median(server_times)
            rows.append({
                "clip": text, "audio_s": round(seconds, 2), "transcript": body["text"],
                "server_median_s": round(median, 3), "server_max_s": round(max(server_times), 3),
                "round_trip_median_s": round(statistics.median(round_trips), 3),
                "rtf": round(median / seconds, 3),
            })
        result = {
            "model": whisper["model"], "device": whisper["device"], "compute_type": whisper["compute_type"],
            "model_load_s": whisper.get("load_s"), "server_ready_s": round(ready_s, 2),
            "repeats": args.repeats, "clips": rows, "peak_rss_mb": round(peak_rss_mb(server.pid), 1),
            "cpus": os.cpu_count(),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
        server_log.close()

    print(f"Whisper {result['model']} on {result['device']} ({result['compute_type']}), {result['cpus']} CPUs")
    print(f"model load {result['model_load_s']} s; server ready after {result['server_ready_s']} s")
    print(f"{'audio s':>8} {'median s':>9} {'max s':>7} {'RTF':>6}  clip")
    for row in result["clips"]:
        print(f"{row['audio_s']:>8} {row['server_median_s']:>9} {row['server_max_s']:>7} {row['rtf']:>6}  {row['clip']}")
    print(f"peak RSS of the server: {result['peak_rss_mb']} MB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
