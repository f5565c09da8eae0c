"""The page's side of /ws/audio: a recording streamed as 16 kHz s16le frames at real-time pace."""
from __future__ import annotations

import json
import queue
import threading
import time
import wave
from pathlib import Path

import numpy as np
import websocket

FRAME_S = 0.1


def pcm16k(path: Path) -> bytes:
    """A WAV's audio as 16 kHz mono s16le, as the page's AudioWorklet sends it."""
    with wave.open(str(path), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float32)
    samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != 16000:
        positions = np.arange(0, len(samples), rate / 16000)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def spoken(clips: list[Path], gap_s: float = 0.8, lead_s: float = 0.3) -> bytes:
    """Clips one after another as one 16 kHz s16le recording, with a pause before and after each
    (people pause between sentences)."""
    quiet = lambda seconds: b"\x00\x00" * int(16000 * seconds)  # noqa: E731
    return quiet(lead_s) + b"".join(pcm16k(clip) + quiet(gap_s) for clip in clips)


class AudioStream:
    """One recording's socket; a reader thread keeps every frame the server sends with the time it came."""

    def __init__(self, server_url: str, session: str, start: dict | None = None, send_start: bool = True):
        self.ws = websocket.create_connection(server_url.replace("http", "ws", 1) + f"/ws/audio?session={session}",
                                              timeout=60)
        self.frames: list[dict] = []
        self._incoming: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        if send_start:  # else the test sends its own first frame
            self.send({"type": "start", "sample_rate": 16000, "format": "s16le", **(start or {})})

    def _read(self) -> None:
        try:
            while raw := self.ws.recv():
                message = json.loads(raw)
                message["at"] = time.monotonic()
                self.frames.append(message)
                self._incoming.put(message)
        except Exception:  # the socket closed under the reader
            pass
        self._incoming.put(None)  # closed

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message))

    def play(self, pcm: bytes, pace: float = 1.0) -> float:
        """Send the audio in ~100 ms frames at ``pace`` times real time; answers when the first frame went."""
        step = int(16000 * FRAME_S) * 2
        began = time.monotonic()
        for i, offset in enumerate(range(0, len(pcm), step)):
            self.ws.send_binary(pcm[offset:offset + step])
            delay = began + (i + 1) * FRAME_S / pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return began

    def until(self, kind: str, timeout: float = 60.0) -> dict:
        """The next frame of this kind (or an error, or the close: ``{"type": "closed"}``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._incoming.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no {kind} frame; got {[f['type'] for f in self.frames]}") from None
            if message is None:
                return {"type": "closed"}
            if message["type"] in (kind, "error"):
                return message

    def of(self, kind: str) -> list[dict]:
        return [f for f in self.frames if f["type"] == kind]

    def close(self) -> None:
        self.ws.close()
