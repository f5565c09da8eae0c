"""Benchmark a live recording with recognition on a server: what one pass costs the network and the
server, for a 3 s recording and for a 30 s one.

Starts the real wyoming-faster-whisper (tests/support/speech_servers.py) behind a loopback tap
(tests/support/tap.py) that counts each connection's bytes and times the server's answer: from the
client's last byte to the server's first (the server's own time as the wire sees it). Each recording
(Piper sentences with 0.8 s pauses) is fed to the app's LiveTranscriber at real-time pace, as the page
sends it, then stopped. Reported per recording:

- passes: each preview pass while speaking (its own connection): bytes sent, server ms;
- stream: the one connection that carried the recording as it was spoken: bytes sent, and the
  server's read at Stop (AudioStop -> Transcript);
- before: what the previous design sent for its last pass, the whole recording so far (one request
  of it, through the same tap): bytes and server ms.

    .venv/bin/python benchmarks/bench_live_upstream.py [--repeats 3] [--json bench-results/live_upstream.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, require, save_results, summary

require(modules=("jiwer", "wyoming_faster_whisper"), programs=())

import numpy as np  # noqa: E402

from speech2image.config import Settings, parse_speech_urls  # noqa: E402
from speech2image.speech import AsrPool, LiveTranscriber  # noqa: E402
from tests.support import speech  # noqa: E402
from tests.support.audio_stream import spoken  # noqa: E402
from tests.support.speech_servers import WyomingServer  # noqa: E402
from tests.support.tap import Tap  # noqa: E402

SENTENCES = ["A red fox runs across the snowy field at dawn.", "The sun rises slowly over the quiet hills.",
             "A small wooden boat drifts on the calm lake.", "Tall pine trees stand along the rocky shore.",
             "Birds fly south under a pale grey sky.", "A lighthouse shines over the dark sea.",
             "Two children build a castle out of sand.", "An old train crosses a stone bridge.",
             "Snow falls softly on the empty street."]
FRAME = 3200  # 100 ms of 16 kHz s16le


def audio_bytes(connection) -> int:
    return sum(len(e.payload or b"") for e in connection.events() if e.type == "audio-chunk")


def live(tap: Tap, pcm: bytes) -> dict:
    settings = Settings(asr_url=tap.url)
    pool = AsrPool(parse_speech_urls(tap.url), settings, local=lambda: None)
    tap.clear()
    stream = LiveTranscriber(lambda: pool).open(lambda message: None, 120)
    began = time.monotonic()
    for i in range(0, len(pcm), FRAME):
        stream.feed(pcm[i:i + FRAME])
        delay = began + (i // FRAME + 1) * 0.1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    final = stream.finish()
    stream.close()
    connections = tap.finished()
    upstream = max(connections, key=audio_bytes)
    passes = [c for c in connections if c is not upstream]
    tap.clear()
    whole = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    pool.transcribe_samples(whole)
    [before] = tap.finished()
    return {"seconds": round(len(pcm) / 32000, 1), "final_words": len(final.text.split()),
            "passes_bytes": summary([len(c.sent) for c in passes], digits=0),
            "passes_server_ms": summary([c.server_s() for c in passes], 1000, 0),
            "stream_bytes": len(upstream.sent), "stream_read_at_stop_ms": round(upstream.server_s() * 1000),
            "before_last_pass_bytes": len(before.sent), "before_last_pass_server_ms": round(before.server_s() * 1000)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "live_upstream.json"))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = [speech.piper_wav(s, tmp / f"s{i}.wav") for i, s in enumerate(SENTENCES)]
        recordings = {"short": spoken(clips[:1]), "long": spoken(clips)}
        with WyomingServer("whisper", tmp / "w") as server, Tap(server.url) as tap:
            live(tap, recordings["short"])  # warm-up: the server loads its model on the first request
            for name, pcm in recordings.items():
                results[name] = [live(tap, pcm) for _ in range(args.repeats)]
                for row in results[name]:
                    print(name, json.dumps(row), flush=True)
    save_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
