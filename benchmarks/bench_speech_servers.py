"""Benchmark speech on servers (SPEECH2IMAGE_ASR_URL / _TTS_URL) against speech in the app.

Starts the real wyoming-faster-whisper and wyoming-piper (the test suite's, tests/support/speech_servers.py)
on free loopback ports, then measures:

1. overhead: our pool + client round trip minus the server's own time, where the server's own time is a
   bare ``wyoming`` client on the same connection type (connect, Describe-free Transcribe/Synthesize, read
   the answer), alternated with ours on the same clip; for the voice, time to the first audio;
2. the app's peak RSS (VmHWM) after spoken jobs with both stages remote, beside the same with both local;
3. 1/2/4/8/16 simultaneous transcriptions through ``POST /api/transcribe``: the app with its own Whisper,
   with one Wyoming server, with two; p50/p95 latency, requests lost, and how many each server served.

    .venv/bin/python benchmarks/bench_speech_servers.py [--repeats 10] [--json bench-results/speech_servers.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from benchlib import ROOT, peak_rss_mb, require, save_results, summary

require(modules=("jiwer",), programs=())

from speech2image.config import Settings, parse_speech_urls  # noqa: E402
from speech2image.speech import AsrPool, TtsPool  # noqa: E402
from speech2image.speech import wyoming as wy  # noqa: E402
from speech2image.speech.asr import decode_audio  # noqa: E402
from tests.support import speech  # noqa: E402
from tests.support.app_process import AppProcess  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402
from tests.support.speech_servers import WyomingServer  # noqa: E402

SAID = "A red fox runs across the snowy field at dawn while the sun rises over the hills."
CAPTION = "Here is a red fox running across a snowy field at dawn."


def overhead(asr_url: str, tts_url: str, clip: Path, repeats: int) -> dict:
    settings = Settings(asr_url=asr_url, tts_url=tts_url)
    asr = AsrPool(parse_speech_urls(asr_url), settings, local=lambda: None)
    tts = TtsPool(parse_speech_urls(tts_url), settings, local=lambda: None)
    server_asr, server_tts = parse_speech_urls(asr_url)[0], parse_speech_urls(tts_url)[0]
    samples = decode_audio(clip.read_bytes(), 60)
    bare_asr, ours_asr, bare_tts, ours_tts = [], [], [], []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        wy.transcribe(server_asr, samples, None, None, 60)
        t1 = time.perf_counter()
        asr.transcribe_samples(samples)
        t2 = time.perf_counter()
        _, first_bare = wy.synthesize(server_tts, CAPTION, None, 60)
        _, first_ours = tts.pool.call(lambda member: member.synthesize(CAPTION, ""))
        if i == 0:
            continue  # warm-up
        bare_asr.append(t1 - t0)
        ours_asr.append(t2 - t1)
        bare_tts.append(first_bare)
        ours_tts.append(first_ours)
    diff = [o - b for o, b in zip(ours_asr, bare_asr)]
    diff_tts = [o - b for o, b in zip(ours_tts, bare_tts)]
    return {"asr_server_s": summary(bare_asr), "asr_through_pool_s": summary(ours_asr),
            "asr_overhead_ms": summary(diff, 1000, 1), "tts_first_audio_server_s": summary(bare_tts),
            "tts_first_audio_through_pool_s": summary(ours_tts), "tts_overhead_ms": summary(diff_tts, 1000, 1)}


def rss_after_jobs(folder: Path, comfy_url: str, clip: Path, **settings) -> float:
    with AppProcess(folder, comfy_url, tts_engine="piper", preload="true", **settings) as app:
        for _ in range(3):
            job = requests.post(app.url + "/api/jobs", data={"session": "bench"},
                                files={"audio": ("clip.wav", clip.read_bytes(), "audio/wav")}, timeout=10).json()
            state = app.wait_finished(job["job_id"], timeout=180)
            assert state["stage"] == "done", state
        return peak_rss_mb(app.process.pid)


def concurrency(folder: Path, comfy_url: str, clip: Path, levels, **settings) -> dict:
    rows = {}
    with AppProcess(folder, comfy_url, preload="true", max_audio_s=60, **settings) as app:
        data = clip.read_bytes()

        def one(times: list, lost: list):
            t0 = time.perf_counter()
            try:
                answer = requests.post(app.url + "/api/transcribe", files={"audio": ("c.wav", data, "audio/wav")},
                                       timeout=300)
                (times if answer.status_code == 200 and answer.json().get("text") else lost).append(
                    time.perf_counter() - t0)
            except requests.RequestException:
                lost.append(time.perf_counter() - t0)

        one([], [])  # warm-up (and the local model's load)
        for n in levels:
            times, lost = [], []
            threads = [threading.Thread(target=one, args=(times, lost)) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rows[n] = {"p50_s": round(statistics.median(times), 2) if times else None,
                       "p95_s": round(sorted(times)[max(0, int(round(0.95 * len(times))) - 1)], 2) if times else None,
                       "lost": len(lost)}
        servers = requests.get(app.url + "/api/health", timeout=30).json()["whisper"].get("servers", [])
        rows["served"] = {s["url"]: s["served"] for s in servers}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "speech_servers.json"))
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = speech.piper_wav(SAID, tmp / "said.wav")
        with WyomingServer("whisper", tmp / "w1") as w1, WyomingServer("whisper", tmp / "w2") as w2, \
                WyomingServer("piper", tmp / "p1") as p1, FakeComfyUI(Knobs(step_delay_s=0.01)) as comfy:
            print(f"clip: {speech.wav_seconds(clip):.1f} s of speech", flush=True)
            results["overhead"] = overhead(w1.url, p1.url, clip, args.repeats)
            print(json.dumps(results["overhead"], indent=1), flush=True)
            results["peak_rss_mb"] = {
                "both_local": rss_after_jobs(tmp / "rss-local", comfy.url, clip),
                "both_remote": rss_after_jobs(tmp / "rss-remote", comfy.url, clip, asr_url=w1.url, tts_url=p1.url)}
            print(json.dumps(results["peak_rss_mb"]), flush=True)
            curve = {}
            for name, settings in [("local", {}), ("one_server", {"asr_url": w1.url}),
                                   ("two_servers", {"asr_url": f"{w1.url},{w2.url}"})]:
                curve[name] = concurrency(tmp / f"c-{name}", comfy.url, clip, levels, **settings)
                print(name, json.dumps(curve[name]), flush=True)
            results["concurrency"] = curve
    save_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
