"""Stand-ins for the pipeline's own stages, so ``speech2image.jobs.Pipeline`` runs in a test without
Whisper, an LLM or a voice: each has the methods the pipeline calls on the real one, answers at once
(or waits where a test holds it) and records what it was asked. ComfyUI is no stage of ours: tests
give the pipeline the fake ComfyUI server (``fake_comfy``) instead.

- ``Transcriber``: ``transcribe(audio) -> Transcript``
- ``PromptWriter``: ``write(transcript, ...) -> PromptPlan``, streaming one token; ``fail`` raises, ``hold`` waits
- ``Voices``: ``get(engine).speak(text) -> SpokenCaption``; ``fail`` raises, ``before`` runs first
- ``WatchedHub``: an ``EventHub`` that notes the job's durable rows as each event is published
- ``pipeline``: a ``Pipeline`` of these stages on a ComfyUI URL, in a temporary data folder; ``wait_for``
"""
from __future__ import annotations

import io
import threading
import time
import wave
from contextlib import contextmanager

from speech2image.config import Settings
from speech2image.jobs import EventHub, JobHistory, OutputStore, Pipeline
from speech2image.picture import WorkflowLibrary
from speech2image.prompt import PromptPlan, SessionHistory, Turn
from speech2image.speech import SpokenCaption, Transcript

HOLD_LIMIT_S = 30.0  # a held stage goes on after this, so a test that forgot to release it fails instead of hanging


class Transcriber:
    def __init__(self, text: str = "a lighthouse on a rocky coast"):
        self.text = text
        self.heard: list[bytes] = []

    def transcribe(self, audio: bytes, language: str | None = None, translate: bool = False) -> Transcript:
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
              base=None, dialect=None, language=None, translation=None, on_turn=None, offline=False) -> PromptPlan:
        if offline:  # the offline rewriter: no LLM asked, nothing held
            return PromptPlan(prompt=f"{transcript}, sketch", negative_prompt="", caption=transcript, source="offline")
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

    def speak(self, text: str, engine: str | None = None, language: str | None = None) -> SpokenCaption:
        """As ``speech.Voices.speak``: the caption, by the job's engine (noted), in its language."""
        if engine is not None or language is not None:
            self.engines.append(engine)
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


@contextmanager
def pipeline(tmp_path, comfyui_url: str, writer: PromptWriter | None = None, transcript: str = "a red fox in the snow",
             **settings):
    """A Pipeline of stand-in stages (64x64, 6 steps unless ``settings`` say otherwise), shut down after."""
    from .data import ROOT

    history = JobHistory(tmp_path / "speech2image.db")
    running = Pipeline(Transcriber(transcript), writer or PromptWriter(),
                       WorkflowLibrary(ROOT / "workflows", tmp_path / "workflows"), OutputStore(tmp_path / "outputs"),
                       Settings(**{"comfyui_url": comfyui_url, "steps": 6, "width": 64, "height": 64, **settings}),
                       hub=WatchedHub(history), voices=Voices(), history=history)
    try:
        yield running
    finally:
        running.shutdown()


def wait_for(condition, timeout: float = 20.0, what: str = "the condition"):
    """``condition()``'s first true value, asked every 20 ms; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
