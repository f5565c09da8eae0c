"""Live transcription: the page streams the microphone while the person speaks, Whisper re-reads
the audio so far at a steady cadence, and the final transcript is ready when Record stops.

- ``Agreement``: LocalAgreement-2. A word is committed once two consecutive passes agree on
  it; committed words never change, the tentative tail may.
- ``LiveStream``: one recording's audio (16 kHz mono s16le, bounded by the recording limit)
  and its agreement; ``finish()`` answers the final transcript.
- ``LiveTranscriber``: runs every stream's passes on the one warm model, one at a time, from a
  priority queue: finals before partials, and among partials the stream waiting longest first;
  a newer partial request of a stream replaces its older one. Silero VAD (a few ms) decides
  whether new audio holds speech, so silence costs no pass.

The socket's frames are declared here once (``FRAMES``); ``web/live.py`` carries them.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .asr import NO_SPEECH_MESSAGE, SAMPLE_RATE, Transcriber, has_speech
from .errors import BadInput, NoSpeech, UserFacingError

log = logging.getLogger(__name__)

SAMPLE_FORMAT = "s16le"
BYTES_PER_SAMPLE = 2
MAX_FRAME_BYTES = SAMPLE_RATE * BYTES_PER_SAMPLE  # one second; the page sends ~100 ms at a time

# page -> server: "start" {sample_rate, format, <job options as in POST /api/jobs>}, binary PCM frames, "stop".
# server -> page: "ready"; "partial" {committed, tentative, audio_s}; "note" {message} (cut at the limit);
# "final" {text, elapsed_s (Stop -> final), duration_s, passes}; "job" {snapshot}; "error" {code, message}.
FRAMES = ("start", "stop", "ready", "partial", "note", "final", "job", "error")


def frame(kind: str, **fields) -> dict:
    assert kind in FRAMES, kind
    return {"type": kind, **fields}


def check_start(message: dict) -> None:
    """The start frame names the one sample format the server reads."""
    if message.get("sample_rate") != SAMPLE_RATE or message.get("format") != SAMPLE_FORMAT:
        raise BadInput(f"send {SAMPLE_RATE} Hz mono {SAMPLE_FORMAT} audio (start: sample_rate {SAMPLE_RATE}, "
                       f"format '{SAMPLE_FORMAT}')", code="bad_audio_format")


def _plain(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


class Agreement:
    """LocalAgreement-2 over whole-audio passes: the words after the committed ones are compared
    with the previous pass's words at the same places; the common prefix is committed. The last
    word of a pass is never committed by it: the audio may end in the middle of that word."""

    def __init__(self):
        self.committed: list[str] = []
        self.tentative: list[str] = []
        self._previous: list[str] = []

    def update(self, words: list[str]) -> None:
        start = len(self.committed)
        new, old = words[start:], self._previous[start:]
        agreed = 0
        while agreed < min(len(new) - 1, len(old)) and _plain(new[agreed]) == _plain(old[agreed]):
            agreed += 1
        self.committed.extend(new[:agreed])
        self.tentative = new[agreed:]
        self._previous = words

    def text(self) -> str:
        return " ".join(self.committed + self.tentative)


@dataclass(frozen=True)
class Final:
    text: str
    elapsed_s: float  # from finish() to the text
    duration_s: float
    passes: int
    cut: bool


class LiveStream:
    """One recording as it streams in. ``feed`` takes PCM frames, ``finish`` answers the final
    transcript, ``close`` releases the audio. Partial transcripts go to ``listener`` (from the
    scheduler's thread)."""

    def __init__(self, scheduler: "LiveTranscriber", listener: Callable[[dict], None], max_audio_s: float):
        self._scheduler = scheduler
        self._listener = listener
        self.max_audio_s = max_audio_s
        self._limit = int(max_audio_s * SAMPLE_RATE) * BYTES_PER_SAMPLE
        self._pcm = bytearray()
        self._lock = threading.Lock()
        self.agreement = Agreement()
        self.cut = False
        self.state = "open"  # open -> stopping -> done | closed
        self.passes = 0
        self.running = False  # a pass of this stream is under way
        self.pending = None  # the sequence number of its queued request, None when none
        self.last_pass_started = 0.0  # monotonic, for the cadence and fairness among partials
        self._covered = 0  # samples the last finished pass saw
        self._checked = 0  # samples the VAD has looked at since then
        self._speech_since_pass = False
        self._finished = threading.Event()
        self._final_text: str | None = None
        self._error: UserFacingError | None = None

    # --- the audio --------------------------------------------------------------------

    @property
    def samples(self) -> int:
        return len(self._pcm) // BYTES_PER_SAMPLE

    def feed(self, data: bytes) -> str | None:
        """Append PCM; answers a note the first time the recording reaches its limit."""
        if len(data) % BYTES_PER_SAMPLE or len(data) > MAX_FRAME_BYTES:
            raise BadInput(f"an audio frame must be whole {SAMPLE_FORMAT} samples, at most {MAX_FRAME_BYTES} bytes",
                           code="bad_frame")
        with self._lock:
            if self.state != "open":
                return None
            room = self._limit - len(self._pcm)
            if len(data) > room:
                data = data[:room]
                if not self.cut:
                    self.cut = True
                    note = (f"The recording reached the limit of {self.max_audio_s:g} seconds; "
                            "what came after was not transcribed.")
                    log.info("live stream cut at %g s", self.max_audio_s)
                    self._pcm.extend(data)
                    return note
            self._pcm.extend(data)
        self._scheduler.consider(self)
        return None

    def audio(self, start: int = 0) -> np.ndarray:
        with self._lock:
            raw = bytes(self._pcm[start * BYTES_PER_SAMPLE:])
        return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0

    def speech_after_pass(self, look_back_s: float = 0.3) -> bool:
        """Has speech come after the audio the last pass saw? Only unchecked audio is read again."""
        if self._speech_since_pass:
            return True
        total = self.samples
        if total - self._checked < SAMPLE_RATE // 10:
            return False
        start = max(self._covered, self._checked - int(look_back_s * SAMPLE_RATE))
        self._checked = total
        self._speech_since_pass = has_speech(self.audio(start)[: total - start])
        return self._speech_since_pass

    # --- passes (called by the scheduler) --------------------------------------------------

    def took_pass(self, text: str, covered: int) -> None:
        self.agreement.update(text.split())
        self.passes += 1
        self._covered = covered
        self._checked = covered  # what the VAD saw after it during the pass is looked at again
        self._speech_since_pass = False

    def send(self, message: dict) -> None:
        try:
            self._listener(message)
        except Exception as exc:  # a page that went away: its stream ends when its socket does
            log.debug("live stream listener failed: %s", exc)

    def send_partial(self) -> None:
        self.send(frame("partial", committed=" ".join(self.agreement.committed),
                        tentative=" ".join(self.agreement.tentative), audio_s=round(self._covered / SAMPLE_RATE, 2)))

    def conclude(self, error: UserFacingError | None = None) -> None:
        with self._lock:
            if error is None:
                self._final_text = self.agreement.text()
            self._error = error
            self.state = "done"
        self._finished.set()

    # --- the end ------------------------------------------------------------------------

    def finish(self, timeout_s: float = 120.0) -> Final:
        """The final transcript: the last pass's words when no speech came after it, else one more
        pass first (ahead of every partial). Raises NoSpeech when nothing was said."""
        started = time.perf_counter()
        with self._lock:
            self.state = "stopping"
            self.pending = None
            busy = self.running
        if busy or self.speech_after_pass():
            self._scheduler.request(self, final=True)
        else:
            self.conclude()
        if not self._finished.wait(timeout_s):
            raise UserFacingError("the live transcript took too long; try again", code="asr_timeout", status=504)
        if self._error is not None:
            raise self._error
        if not self._final_text:
            raise NoSpeech(NO_SPEECH_MESSAGE, code="no_speech")
        return Final(text=self._final_text, elapsed_s=time.perf_counter() - started,
                     duration_s=self.samples / SAMPLE_RATE, passes=self.passes, cut=self.cut)

    def close(self) -> None:
        """Release the audio; a pass still queued for it is skipped."""
        with self._lock:
            if self.state != "done":
                self.state = "closed"
            self.pending = None
            self._pcm = bytearray()
        self._finished.set()


class LiveTranscriber:
    """Schedules every live stream's passes on the current warm Whisper model, one at a time."""

    def __init__(self, transcriber: Callable[[], Transcriber], cadence_s: float = 1.0, min_new_s: float = 0.3,
                 first_pass_s: float = 0.8, partial_beam_size: int = 1):
        self._transcriber = transcriber  # the current one: a settings change may rebuild it
        self.cadence_s = cadence_s  # at most one partial pass per stream this often
        self.min_new_s = min_new_s  # new audio a partial pass needs
        self.first_pass_s = first_pass_s  # audio the first pass needs: fewer words are not worth a pass
        self.partial_beam_size = partial_beam_size
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def open(self, listener: Callable[[dict], None], max_audio_s: float) -> LiveStream:
        return LiveStream(self, listener, max_audio_s)

    def consider(self, stream: LiveStream) -> None:
        """After new audio: ask for a partial pass when the cadence allows and speech came."""
        if stream.state != "open" or stream.pending is not None or stream.running:
            return
        if time.monotonic() - stream.last_pass_started < self.cadence_s:
            return
        if stream.samples < self.first_pass_s * SAMPLE_RATE:
            return
        if stream.samples - stream._covered < self.min_new_s * SAMPLE_RATE or not stream.speech_after_pass():
            return
        self.request(stream, final=False)

    def request(self, stream: LiveStream, final: bool) -> None:
        with self._cond:
            seq = next(self._seq)
            stream.pending = seq
            # finals first; among partials, the stream whose last pass is oldest
            heapq.heappush(self._heap, (0 if final else 1, 0.0 if final else stream.last_pass_started, seq, stream))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="live-asr", daemon=True)
                self._thread.start()
            self._cond.notify()

    def backlog(self) -> int:
        with self._cond:
            return len(self._heap)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                priority, _, seq, stream = heapq.heappop(self._heap)
            final = priority == 0
            with stream._lock:
                if stream.pending != seq or stream.state not in (("stopping",) if final else ("open",)):
                    continue  # replaced, stopped or closed meanwhile
                stream.pending = None
                stream.running = True
                stream.last_pass_started = time.monotonic()
            try:
                self._pass(stream, final)
            except UserFacingError as exc:
                stream.conclude(exc)
            except Exception:
                log.exception("live transcription pass failed")
                stream.conclude(UserFacingError("live transcription failed; the server log has the details",
                                                code="asr_failed"))
            finally:
                stream.running = False

    def _pass(self, stream: LiveStream, final: bool) -> None:
        if final and stream.passes and not stream.speech_after_pass():
            stream.conclude()  # the last partial pass already heard everything
            return
        samples = stream.audio()
        transcriber = self._transcriber()
        text, _ = transcriber.transcribe_samples(samples, None if final else self.partial_beam_size)
        stream.took_pass(text, samples.size)
        if final:
            stream.conclude()
        else:
            stream.send_partial()
