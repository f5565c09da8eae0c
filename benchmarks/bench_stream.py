"""Benchmark live transcription (/ws/audio) against the upload path, through the real server.

Starts ``app.py`` on a free loopback port (LLM and voice off, the fake ComfyUI of the tests
rendering 1 step), makes spoken requests with Piper and espeak-ng (2-15 s, then 1.5 s of quiet as
before an auto-stop) and streams each at real-time pace in 100 ms frames, as the page does.
Reports Stop -> final transcript, the first partial words after speech starts, the word error
rate against the upload path (/api/transcribe) on the same clips, the curve with 1/2/4/8/16 tabs
streaming at once, the server's CPU while one person speaks, and whether a render's progress
keeps flowing to its page while another tab speaks (60 steps of 50 ms, alone and beside a speaker).

    .venv/bin/python benchmarks/bench_stream.py [--tabs 1,2,4,8,16] [--tail-s 1.5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import jiwer
import requests
import websocket
from benchlib import ROOT, follow_job, free_port, summary

from tests.support import speech  # noqa: E402  (the clip makers the tests use)
from tests.support.audio_stream import AudioStream, pcm16k  # noqa: E402
from tests.support.data import CASES  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402
from tests.support.speech import NORMALIZE  # noqa: E402

CLIPS = [
    "a cat wearing a red hat",
    "a red fox sitting in a snowy forest at sunrise",
    "draw me a lighthouse on a rocky coast during a storm with huge waves",
    "an old steam train crossing a stone bridge in the mountains",
    "a small wooden cabin by a quiet lake with mountains behind it and a clear starry sky above, "
    "painted in soft watercolors with warm evening light",
    *[case for case in CASES[:14] if case not in ("a red fox sitting in a snowy forest at sunrise",)],
]
LEAD_S, TAIL_S = 0.3, 1.5


def wer(references, hypotheses) -> float:
    return round(jiwer.wer(references, hypotheses, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE), 3)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream_once(url: str, wav: Path) -> dict:
    """One tab: stream the clip at real-time pace, press Stop, wait for the final text and the job."""
    stream = AudioStream(url, uuid.uuid4().hex)
    try:
        assert stream.until("ready", 30)["type"] == "ready"
        began = stream.play(pcm16k(wav))
        stopped = time.monotonic()
        stream.send({"type": "stop"})
        final = stream.until("final", 120)
        received = time.monotonic()
        if final["type"] != "final":
            return {"error": final}
        job = stream.until("job", 30)
        first = next((f for f in stream.of("partial") if f["committed"] or f["tentative"]), None)
        return {"text": final["text"], "stop_to_final_s": received - stopped, "server_final_s": final["elapsed_s"],
                "first_partial_s": (first["at"] - began - LEAD_S) if first else None,
                "partials": len(stream.of("partial")), "job": job.get("type")}
    finally:
        stream.close()


def render_relay(url: str, fake: FakeComfyUI, wav: Path | None, steps: int = 60) -> dict:
    """A render's progress on the page (fake ComfyUI, 50 ms a step), alone or while one tab speaks
    ``wav``: how long each step took from ComfyUI's frame to the page, and the longest gap between steps."""
    session = uuid.uuid4().hex
    ws = websocket.create_connection(url.replace("http", "ws", 1) + f"/ws?session={session}", timeout=120)
    json.loads(ws.recv())  # hello: subscribed
    speaker = threading.Thread(target=stream_once, args=(url, wav)) if wav else None
    if speaker:
        speaker.start()
        time.sleep(1.0)  # the render starts while the person is speaking
    posted_before = len(fake.posted)  # the speaker's own job is posted after its Stop, after this render
    job_id = requests.post(url + "/api/jobs", json={"session": session, "prompt": "a lighthouse at dusk",
                                                   "steps": steps}, timeout=30).json()["job_id"]
    _, arrived, _ = follow_job(ws, job_id)
    ws.close()
    if speaker:
        speaker.join()
    prompt_id = fake.posted[posted_before]["prompt_id"]
    sent = {step: t for pid, step, t in fake.progress_sent if pid == prompt_id}
    latency = [t - sent[step] for step, t in arrived if step in sent]
    times = [t for _, t in arrived]
    gaps = [b - a for a, b in zip(times, times[1:])]
    return {"relay_ms": summary(latency, scale=1000, digits=1), "longest_gap_ms": round(max(gaps, default=0) * 1000, 1)}


def tabs_at_once(url: str, wavs: list[Path], tabs: int) -> list[dict]:
    results: list[dict] = [{}] * tabs
    threads = []
    for i in range(tabs):
        def run(i=i):
            results[i] = stream_once(url, wavs[i % len(wavs)])
        threads.append(threading.Thread(target=run))
        threads[-1].start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", default="1,2,4,8,16", help="how many tabs stream at once, per round")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--tail-s", type=float, default=TAIL_S,
                        help="quiet after each request before Stop (1.5 s: the page's auto-stop; 0: Stop at once)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    port = free_port()
    import logging
    logging.disable(logging.INFO)  # the in-process fake ComfyUI's request lines
    fake = FakeComfyUI(Knobs(step_delay_s=0.05)).__enter__()
    env = dict(os.environ, SPEECH2IMAGE_PORT=str(port), SPEECH2IMAGE_DATA_DIR=str(workdir / "instance"),
               SPEECH2IMAGE_LOG_LEVEL="WARNING", SPEECH2IMAGE_LLM_URL="off", SPEECH2IMAGE_TTS_ENGINE="off",
               SPEECH2IMAGE_COMFYUI_URL=fake.url, SPEECH2IMAGE_STEPS="1", SPEECH2IMAGE_WIDTH="64",
               SPEECH2IMAGE_HEIGHT="64", SPEECH2IMAGE_MAX_JOBS_PER_SESSION="50")
    server_log = open(workdir / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT,
                              stdout=server_log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/api/health", timeout=2).json()["whisper"]["state"] == "ready":
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        clips = {}
        for engine, make in (("piper", speech.piper_wav), ("espeak", speech.espeak_wav)):
            for i, text in enumerate(CLIPS):
                wav = make(text, workdir / f"{engine}{i}.wav")
                clips[(engine, text)] = (wav, speech.pad_wav(wav, workdir / f"{engine}{i}-padded.wav", LEAD_S,
                                                                        args.tail_s))
        stream_once(url, clips[("piper", CLIPS[0])][1])  # warm-up

        result = {"cpus": os.cpu_count(), "engines": {}, "tabs": {}}
        for engine in ("piper", "espeak"):
            said, live, upload, rows = [], [], [], []
            for text in CLIPS:
                wav, padded = clips[(engine, text)]
                with open(padded, "rb") as f:  # the recording the page would upload at Stop: the same audio
                    upload.append(requests.post(url + "/api/transcribe", files={"audio": (padded.name, f, "audio/wav")},
                                                timeout=120).json()["text"])
                cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
                row = stream_once(url, padded)
                row["cpu_percent"] = round(100 * (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - wall0), 1)
                row["audio_s"] = round(speech.wav_seconds(padded), 2)
                rows.append(row)
                said.append(text)
                live.append(row.get("text", ""))
            result["engines"][engine] = {
                "stop_to_final_s": summary([r["stop_to_final_s"] for r in rows if "text" in r]),
                "first_partial_s": summary([r["first_partial_s"] for r in rows if r.get("first_partial_s")]),
                "wer_live": wer(said, live), "wer_upload": wer(said, upload),
                "cpu_percent_while_speaking": summary([r["cpu_percent"] for r in rows], digits=1),
                "clips": rows,
            }
        longest = max((clips[("piper", text)][1] for text in CLIPS), key=speech.wav_seconds)
        render_relay(url, fake, None, steps=5)  # warm-up
        result["render"] = {"alone": render_relay(url, fake, None), "beside_a_speaker": render_relay(url, fake, longest)}
        wavs = [clips[(engine, text)][1] for text in CLIPS for engine in ("piper", "espeak")]
        for tabs in (int(n) for n in args.tabs.split(",")):
            rows = tabs_at_once(url, wavs, tabs)
            done = [r for r in rows if "text" in r]
            result["tabs"][tabs] = {"stop_to_final_s": summary([r["stop_to_final_s"] for r in done]),
                                    "first_partial_s": summary([r["first_partial_s"] for r in done
                                                                if r.get("first_partial_s")]),
                                    "failed": len(rows) - len(done)}
    finally:
        server.terminate()
        server.wait(timeout=10)
        server_log.close()
        fake.__exit__(None, None, None)

    print(f"live transcription, Whisper tiny.en int8, {result['cpus']} CPUs; clips followed by {args.tail_s} s of quiet")
    for engine, row in result["engines"].items():
        print(f"{engine:>7}: Stop->final p50 {row['stop_to_final_s']['p50']} s p95 {row['stop_to_final_s']['p95']} s;"
              f" first words {row['first_partial_s']['p50']} s (max {row['first_partial_s']['max']});"
              f" WER live {row['wer_live']} vs upload {row['wer_upload']};"
              f" server CPU while speaking {row['cpu_percent_while_speaking']['p50']} % of a core")
    for how, row in result["render"].items():
        print(f"render progress {how.replace('_', ' ')}: ComfyUI -> page p50 {row['relay_ms']['p50']} ms, "
              f"p95 {row['relay_ms']['p95']} ms, max {row['relay_ms']['max']} ms; longest gap between steps "
              f"{row['longest_gap_ms']} ms (steps are 50 ms apart)")
    print(f"{'tabs':>5} {'Stop->final p50':>16} {'p95':>6} {'max':>6} {'first words p50':>16} failed")
    for tabs, row in result["tabs"].items():
        s = row["stop_to_final_s"]
        print(f"{tabs:>5} {s['p50']:>16} {s['p95']:>6} {s['max']:>6} {row['first_partial_s']['p50']:>16} {row['failed']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
