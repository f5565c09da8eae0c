"""The frames of ``/ws/audio``, a recording streamed while it is spoken: declared once, for the stream
and the web layer (the page's ``stream.js`` speaks them)."""
from __future__ import annotations

from ..errors import BadInput
from .asr import SAMPLE_RATE

SAMPLE_FORMAT = "s16le"
BYTES_PER_SAMPLE = 2
MAX_FRAME_BYTES = SAMPLE_RATE * BYTES_PER_SAMPLE  # one second; the page sends ~100 ms at a time

# page -> server: "start" {sample_rate, format, <job options as in POST /api/jobs>}, binary PCM frames,
# "language" {language} (the person's correction), "stop".
# server -> page: "ready"; "partial" {committed, tentative, audio_s, language, language_probability};
# "note" {message} (cut at the limit); "final" {text, elapsed_s (Stop -> final), duration_s, passes,
# pass_after_stop, language, language_probability, translation}; "job" {snapshot}; "error" {code, message}.
FRAMES = ("start", "language", "stop", "ready", "partial", "note", "final", "job", "error")


def frame(kind: str, **fields) -> dict:
    assert kind in FRAMES, kind
    return {"type": kind, **fields}


def check_start(message: dict) -> None:
    """The start frame names the one sample format the server reads."""
    if message.get("sample_rate") != SAMPLE_RATE or message.get("format") != SAMPLE_FORMAT:
        raise BadInput(f"send {SAMPLE_RATE} Hz mono {SAMPLE_FORMAT} audio (start: sample_rate {SAMPLE_RATE}, "
                       f"format '{SAMPLE_FORMAT}')", code="bad_audio_format")
