"""What every speech server member shares: the failure it reports and PCM/WAV helpers."""
from __future__ import annotations

import io
import wave

import numpy as np

CONNECT_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 2.0


class ServerFailed(Exception):
    """One server could not do what was asked. ``reason`` completes "<url> ...", e.g. "refused the
    connection"; ``garbage`` marks an answer in no protocol we know (it is no speech server)."""

    def __init__(self, reason: str, garbage: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.garbage = garbage


def pcm16(samples: np.ndarray) -> bytes:
    """16 kHz float32 samples in [-1, 1] as little-endian signed 16-bit PCM."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def wav_from_pcm(pcm: bytes, rate: int, width: int = 2, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def check_wav(data: bytes) -> bytes:
    """The answer if it is a WAV file with audio in it, else ServerFailed (garbage)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getnframes() == 0 and len(data) <= 44:
                raise ServerFailed("answered a WAV file without audio")
    except (wave.Error, EOFError):
        raise ServerFailed(f"answered something that is not a WAV file ({describe_bytes(data)})", garbage=True) \
            from None
    return data


def describe_bytes(data: bytes) -> str:
    """A short, safe picture of an unexpected answer for the message and the log."""
    if not data:
        return "nothing"
    text = data[:60].decode("utf-8", errors="replace")
    shown = "".join(ch if ch.isprintable() else "?" for ch in text)
    return f"{len(data)} bytes starting {shown!r}"
