"""Live transcription: the page streams the microphone while the person speaks, Whisper re-reads
the audio so far at a steady cadence, and the final transcript is ready when Record stops.

- ``Agreement``: LocalAgreement-2 for the words shown while speaking. A word is committed once
  two consecutive passes agree on it; committed words never change, the tentative tail may.
- ``LiveStream``: one recording's audio (16 kHz mono s16le, bounded by the recording limit)
  and its agreement; ``finish()`` answers the final transcript: the text of the last pass,
  which read the whole recording (the preview's committed words were read from less of it, so
  the final text may word a few of them differently).
- ``LiveTranscriber``: runs every stream's passes on the one warm model, one at a time, from a
  priority queue: finals, then end-of-speech passes, then partials (the stream waiting longest
  first); a newer request of a stream replaces its older one. Silero VAD (a few ms) follows the
  speech, so silence costs no pass.

Every pass reads the whole recording so far with the same beam as an upload (in a window fitted
to it, ``whisper_window``: ~0.3 s on 2 cores). When the person stops speaking (``endpoint_s`` of
quiet) the stream gets an end-of-speech pass at once: people pause before they press Stop, so
that pass has usually heard everything when Stop comes, and the final transcript is its text,
ready at Stop. Only when speech came after the last pass does Stop cost one more pass.

A pause also tells the stream's ``on_pause`` what was heard (the end-of-speech pass's text, or the
last pass's when it already heard every word), and ``None`` at the first speech after it: the
job stage starts drawing at the pause and cancels that at new words (``jobs/drafts.py``).

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
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import BadInput, NoSpeech, UserFacingError
from .asr import NO_SPEECH_MESSAGE, SAMPLE_RATE, Transcriber
from .window import speech_spans

if TYPE_CHECKING:
    from .pool import AsrPool

log = logging.getLogger(__name__)

SAMPLE_FORMAT = "s16le"
BYTES_PER_SAMPLE = 2
MAX_FRAME_BYTES = SAMPLE_RATE * BYTES_PER_SAMPLE  # one second; the page sends ~100 ms at a time
FINAL, END_OF_SPEECH, PARTIAL = 0, 1, 2  # the passes' kinds, in the order they are run

# page -> server: "start" {sample_rate, format, <job options as in POST /api/jobs>}, binary PCM frames, "stop".
# server -> page: "ready"; "partial" {committed, tentative, audio_s}; "note" {message} (cut at the limit);
# "final" {text, elapsed_s (Stop -> final), duration_s, passes, pass_after_stop}; "job" {snapshot}; "error" {code, message}.
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
    pass_after_stop: bool  # speech came after the last pass, so Stop waited for one more


class LiveStream:
    """One recording as it streams in. ``feed`` takes PCM frames, ``finish`` answers the final
    transcript, ``close`` releases the audio. Partial transcripts go to ``listener`` (from the
    scheduler's thread)."""

    def __init__(self, scheduler: "LiveTranscriber", listener: Callable[[dict], None], max_audio_s: float,
                 on_pause: Callable[[str | None], None] | None = None):
        self._scheduler = scheduler
        self._listener = listener
        # on_pause(text): an end-of-speech pass heard all of this; on_pause(None): speech came again after it
        self._on_pause = on_pause
        self.paused = False  # the last pass was an end-of-speech pass and no speech came since
        self.max_audio_s = max_audio_s
        self._limit = int(max_audio_s * SAMPLE_RATE) * BYTES_PER_SAMPLE
        self._pcm = bytearray()
        self._lock = threading.Lock()
        self.agreement = Agreement()
        self.cut = False
        self.state = "open"  # open -> stopping -> done | closed
        self.passes = 0
        self.running = False  # a pass of this stream is under way
        self.pending: int | None = None  # the sequence number of its queued request, None when none
        self.last_pass_started = 0.0  # monotonic, for the cadence and fairness among partials
        self._covered = 0  # samples the last finished pass saw
        self._checked = 0  # samples the VAD has looked at since then
        self._speech_since_pass = False
        self.speech_end = 0  # where the VAD last heard speech end (samples; the end when still speaking)
        self._finished = threading.Event()
        self._final_text: str | None = None
        self.last_text = ""  # the last pass's whole text
        self.pass_after_stop = False
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

    def listen(self, every_s: float = 0.1, look_back_s: float = 0.3) -> None:
        """Run the VAD over the audio it has not read yet (with a little look-back, so a word cut at
        the edge is heard): notes speech after the last pass, and where speech last ended."""
        total = self.samples
        if total - self._checked < max(every_s * SAMPLE_RATE, 512):
            return
        start = max(self._covered, self._checked - int(look_back_s * SAMPLE_RATE))
        self._checked = total
        spans = speech_spans(self.audio(start)[: total - start])
        if spans:
            self._speech_since_pass = True
            self.speech_end = max(self.speech_end, start + spans[-1][1])
            if self.paused and self.state == "open":
                self.paused = False
                self.pause_changed(None)

    def speech_after_pass(self) -> bool:
        """Has speech come after the audio the last pass saw? (The VAD reads what it has not read.)"""
        self.listen(every_s=0.0)
        return self._speech_since_pass

    def quiet_s(self) -> float:
        """How long the speaker has been quiet, by the VAD's last reading."""
        return (self._checked - self.speech_end) / SAMPLE_RATE if self.speech_end else 0.0

    # --- passes (called by the scheduler) --------------------------------------------------

    def took_pass(self, text: str, covered: int) -> None:
        self.last_text = text
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

    def pause_changed(self, text: str | None) -> None:
        if self._on_pause is None:
            return
        try:
            self._on_pause(text)
        except Exception:
            log.exception("live stream pause listener failed")

    def send_partial(self) -> None:
        self.send(frame("partial", committed=" ".join(self.agreement.committed),
                        tentative=" ".join(self.agreement.tentative), audio_s=round(self._covered / SAMPLE_RATE, 2)))

    def conclude(self, error: UserFacingError | None = None) -> None:
        with self._lock:
            if error is None:
                # The last pass read the whole recording with the upload's beam: its text is the
                # final one (the committed words of the preview were read from shorter audio).
                self._final_text = self.last_text
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
            self._scheduler.request(self, FINAL)
        else:
            self.conclude()
        if not self._finished.wait(timeout_s):
            raise UserFacingError("the live transcript took too long; try again", code="asr_timeout", status=504)
        if self._error is not None:
            raise self._error
        if not self._final_text:
            raise NoSpeech(NO_SPEECH_MESSAGE, code="no_speech")
        return Final(text=self._final_text, elapsed_s=time.perf_counter() - started,
                     duration_s=self.samples / SAMPLE_RATE, passes=self.passes, cut=self.cut,
                     pass_after_stop=self.pass_after_stop)

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

    def __init__(self, transcriber: Callable[[], Transcriber | AsrPool], cadence_s: float = 1.0, min_new_s: float = 0.3,
                 first_pass_s: float = 0.8, endpoint_s: float = 0.3):
        self._transcriber = transcriber  # the current one: a settings change may rebuild it
        self.cadence_s = cadence_s  # at most one partial pass per stream this often
        self.min_new_s = min_new_s  # new audio a partial pass needs
        self.first_pass_s = first_pass_s  # audio the first pass needs: fewer words are not worth a pass
        # quiet after speech that asks for an end-of-speech pass: 0.3 s (was 0.5) so that a draft starts sooner;
        # a shorter pause within a request costs one pass in place of a partial, and a draft cancelled early
        self.endpoint_s = endpoint_s
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def open(self, listener: Callable[[dict], None], max_audio_s: float,
             on_pause: Callable[[str | None], None] | None = None) -> LiveStream:
        """A new recording's stream; ``on_pause`` hears each end-of-speech pass's text, and None when speech
        comes again after it (from the transcriber's thread and the feeding one)."""
        return LiveStream(self, listener, max_audio_s, on_pause)

    def consider(self, stream: LiveStream) -> None:
        """After new audio: an end-of-speech pass once the speaker is quiet, else a partial pass when
        the cadence allows; either only when speech came after the last pass."""
        if stream.state != "open" or stream.pending is not None or stream.running:
            return
        stream.listen()
        if not stream._speech_since_pass and stream.passes and not stream.paused \
                and stream.quiet_s() >= self.endpoint_s and stream.last_text.strip():
            stream.paused = True  # quiet, and the last pass already heard every word: what to draw is known
            stream.pause_changed(stream.last_text)
        if not stream._speech_since_pass or stream.samples < self.first_pass_s * SAMPLE_RATE:
            return
        cadence = self.cadence_s if stream.agreement.text() else self.cadence_s / 2  # no words yet: sooner
        if stream.quiet_s() >= self.endpoint_s:
            self.request(stream, END_OF_SPEECH)
        elif (time.monotonic() - stream.last_pass_started >= cadence
              and stream.samples - stream._covered >= self.min_new_s * SAMPLE_RATE):
            self.request(stream, PARTIAL)

    def request(self, stream: LiveStream, kind: int) -> None:
        with self._cond:
            seq = next(self._seq)
            stream.pending = seq
            # by kind; among partials, the stream whose last pass is oldest; else first come
            heapq.heappush(self._heap, (kind, stream.last_pass_started if kind == PARTIAL else 0.0, seq, stream))
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
                kind, _, seq, stream = heapq.heappop(self._heap)
            final = kind == FINAL
            with stream._lock:
                if stream.pending != seq or stream.state not in (("stopping",) if final else ("open",)):
                    continue  # replaced, stopped or closed meanwhile
                stream.pending = None
                stream.running = True
                stream.last_pass_started = time.monotonic()
            try:
                self._pass(stream, kind)
            except UserFacingError as exc:
                stream.conclude(exc)
            except Exception:
                log.exception("live transcription pass failed")
                stream.conclude(UserFacingError("live transcription failed; the server log has the details",
                                                code="asr_failed"))
            finally:
                stream.running = False

    def _pass(self, stream: LiveStream, kind: int) -> None:
        final = kind == FINAL
        if final and stream.passes and not stream.speech_after_pass():
            stream.conclude()  # the last partial pass already heard everything
            return
        stream.pass_after_stop = final
        samples = stream.audio()
        text, _ = self._transcriber().transcribe_samples(samples)
        stream.took_pass(text, samples.size)
        if final:
            stream.conclude()
            return
        stream.send_partial()
        if kind == END_OF_SPEECH and text.strip() and stream.state == "open" and not stream.speech_after_pass():
            stream.paused = True  # heard all so far, and still quiet: what to draw is known
            stream.pause_changed(text)
