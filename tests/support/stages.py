"""Stand-ins for the pipeline's own stages, so ``speech2image.jobs.Pipeline`` runs in a test without
Whisper, an LLM or a voice: each has the methods the pipeline calls on the real one, answers at once
(or waits where a test holds it) and records what it was asked. ComfyUI is no stage of ours: tests
give the pipeline the fake ComfyUI server (``fake_comfy``) instead.

- ``Transcriber``: ``transcribe(audio) -> Transcript``
- ``PromptWriter``: ``write(transcript, ...) -> PromptPlan``, streaming one token; ``fail`` raises, ``hold`` waits
- ``Voices``: ``get(engine).speak(text) -> SpokenCaption``; ``fail`` raises, ``before`` runs first
- ``WatchedHub``: an ``EventHub`` that notes the job's durable rows as each event is published
"""
from __future__ import annotations

import io
import threading
import wave

from speech2image.jobs import EventHub, JobHistory
from speech2image.prompt import PromptPlan, SessionHistory, Turn
from speech2image.speech import SpokenCaption, Transcript

HOLD_LIMIT_S = 30.0  # a held stage goes on after this, so a test that forgot to release it fails instead of hanging


class Transcriber:
    def __init__(self, text: str = "a lighthouse on a rocky coast"):
        self.text = text
        self.heard: list[bytes] = []

    def transcribe(self, audio: bytes) -> Transcript:
        self.heard.append(audio)
        return Transcript(text=self.text, language="en", duration_s=1.5, elapsed_s=0.01)


class PromptWriter:
    """``fail``: raised instead of a plan. ``hold``: an event it waits for first (``entered`` is set on the way in)."""

    def __init__(self, fail: Exception | None = None, hold: threading.Event | None = None):
        self.fail = fail
        self.hold = hold
        self.entered = threading.Event()
        self.asked: list[str] = []
        self.history = SessionHistory()

    def write(self, transcript, preset=None, session=None, model=None, on_token=None, can_edit=False,
              base=None, on_turn=None) -> PromptPlan:
        self.asked.append(transcript)
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(HOLD_LIMIT_S)
        if self.fail is not None:
            raise self.fail
        if on_token is not None:
            on_token(transcript.split()[0])  # as an LLM streams its answer
        plan = PromptPlan(prompt=f"{transcript}, highly detailed", negative_prompt="blurry",
                          caption=f"Here is {transcript}.", source="offline")
        turn = Turn(transcript=transcript, subject=transcript, prompt=plan.prompt)
        if on_turn is not None:
            on_turn(turn)
        else:
            self.history.add(session, turn)
        return plan


def silent_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


class Voices:
    """``get(engine)`` answers one speaker (itself). ``fail``: raised instead of speaking. ``before``: called
    with the caption before it is spoken (a test waits there for what must come first)."""

    def __init__(self, fail: Exception | None = None, before=None):
        self.fail = fail
        self.before = before
        self.engines: list[str | None] = []
        self.spoken: list[str] = []

    def get(self, engine: str | None = None) -> "Voices":
        self.engines.append(engine)
        return self

    def speak(self, text: str) -> SpokenCaption:
        if self.before is not None:
            self.before(text)
        if self.fail is not None:
            raise self.fail
        self.spoken.append(text)
        return SpokenCaption(wav=silent_wav(), sample_rate=16000, duration_s=0.5, elapsed_s=0.01, engine="stand-in",
                             voice="silence")


class WatchedHub(EventHub):
    """An EventHub that notes, as the pipeline publishes each event (in the pipeline's own thread, before
    anyone can hear of it), what the job's write-ahead row and its history entry say at that moment.
    ``seen``: (event, in-flight row or None, finished entry or None). ``hooks``: called with each event
    before it goes out (a test may wait there)."""

    def __init__(self, history: JobHistory):
        super().__init__()
        self.history = history
        self.seen: list[tuple[dict, dict | None, dict | None]] = []
        self.hooks: list = []
        self._seen_lock = threading.Lock()

    def publish(self, session: str, event: dict) -> None:
        job_id = event.get("job_id")
        row = next((r for r in self.history.in_flight() if r["id"] == job_id), None)
        kept = self.history.get(job_id) if job_id else None
        with self._seen_lock:
            self.seen.append((dict(event), row, kept))
        for hook in list(self.hooks):
            hook(event)
        super().publish(session, event)
