"""Live transcription: the page streams the microphone while the person speaks, Whisper re-reads
the audio so far at a steady cadence, and the final transcript is ready when Record stops.

- ``Agreement`` (``agreement.py``): LocalAgreement-2 for the words shown while speaking.
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

With recognition on servers (an ``AsrPool``) the recording goes to a server as it is spoken
(``upstream``: one Wyoming stream per recording) and the final text is that server's one read of
it at Stop. The passes while speaking read only the phrase being spoken: from where the preview
last settled (an end-of-speech pass settles it; so does a phrase longer than ``window_s``, cut at
its last pause), so a pass costs the network and the server the same in a 30 s recording as in a
3 s one.

Languages: a stream hears the language its job asks for, or detects it (``auto``); a detection
Whisper is sure of (``languages.UNSURE_BELOW``) holds for the rest of the recording, so the passes
do not change language under the person's words. The page may correct the language while the
person speaks (a ``language`` frame): the next passes, and the final text, use the correction.
End-of-speech and final passes also translate a recording that is not English (the same encoding,
decoded once more), so the job's English words are there at Stop too.

The stream tells ``on_heard(kind, heard)`` what it hears for the picture stage to draw early
(``jobs/drafts.py``, ``jobs/sketches.py``): ``words`` when the committed words grow (``heard.text`` is
them), ``pause`` when the speaker went quiet and the last pass heard every word (the end-of-speech
pass's, or the last pass's when it already had), and ``speaking`` (``None``) at the first speech after it.

The socket's frames are declared once, in ``frames`` (``FRAMES``); ``web/live.py`` carries them.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import BadInput, NoSpeech, UserFacingError
from .agreement import Agreement
from .asr import NO_SPEECH_MESSAGE, SAMPLE_RATE, Heard, Transcriber
from .frames import BYTES_PER_SAMPLE, MAX_FRAME_BYTES, SAMPLE_FORMAT, frame
from .languages import fixed, is_english, unsure
from .window import last_pause, speech_spans

if TYPE_CHECKING:
    from .pool import AsrPool
    from .upstream import Upstream

log = logging.getLogger(__name__)

FINAL, END_OF_SPEECH, PARTIAL = 0, 1, 2  # the passes' kinds, in the order they are run


@dataclass(frozen=True)
class Final:
    text: str
    elapsed_s: float  # from finish() to the text
    duration_s: float
    passes: int
    cut: bool
    pass_after_stop: bool  # speech came after the last pass, so Stop waited for one more
    heard: Heard | None = None  # the last pass's language, its probability, and the translation


class LiveStream:
    """One recording as it streams in. ``feed`` takes PCM frames, ``finish`` answers the final
    transcript, ``close`` releases the audio. Partial transcripts go to ``listener`` (from the
    scheduler's thread)."""

    def __init__(self, scheduler: "LiveTranscriber", listener: Callable[[dict], None], max_audio_s: float,
                 language: str = "auto", on_heard: Callable[[str, Heard | None], None] | None = None):
        self._scheduler = scheduler
        self._on_heard = on_heard  # words, pause, speaking: see the module's doc
        self.paused = False  # the last pass heard every word, the speaker is quiet, and on_heard was told
        self._told_words = ""  # the committed words on_heard was last told
        self.asked = fixed(language)  # the language the job asks for (or the person's correction); None: detect
        self.heard: Heard | None = None  # what the last pass heard
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
        self.pending: int | None = None  # the sequence number of its queued request, None when none
        self.last_pass_started = 0.0  # monotonic, for the cadence and fairness among partials
        self._covered = 0  # samples the last finished pass saw
        self._checked = 0  # samples the VAD has looked at since then
        self._speech_since_pass = False
        self.speech_end = 0  # where the VAD last heard speech end (samples; the end when still speaking)
        self._finished = threading.Event()
        self._final_text: str | None = None
        self._last_text = ""  # the last pass's whole text
        self.pass_after_stop = False
        self._error: UserFacingError | None = None
        self.upstream: Upstream | None = None  # the recording on a server as it is spoken (recognition on servers)
        self.anchor = 0  # samples the preview has settled; with an upstream, passes read from here
        self.settled: list[str] = []  # the words of the audio before the anchor

    # --- the audio --------------------------------------------------------------------

    @property
    def samples(self) -> int:
        return len(self._pcm) // BYTES_PER_SAMPLE

    def feed(self, data: bytes) -> str | None:
        """Append PCM; answers a note the first time the recording reaches its limit."""
        if len(data) % BYTES_PER_SAMPLE or len(data) > MAX_FRAME_BYTES:
            raise BadInput(f"an audio frame must be whole {SAMPLE_FORMAT} samples, at most {MAX_FRAME_BYTES} bytes",
                           code="bad_frame")
        note = None
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
        if data and self.upstream is not None:
            self.upstream.feed(data)
        if note is None:
            self._scheduler.consider(self)
        return note

    def pcm(self) -> bytes:
        """The recording so far, as it came."""
        with self._lock:
            return bytes(self._pcm)

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
        # a span ends once the quiet after it is as long as the end-of-speech wait, so that quiet is seen at once
        spans = speech_spans(self.audio(start)[: total - start], min_silence_ms=int(self._scheduler.endpoint_s * 1000))
        if spans:
            self._speech_since_pass = True
            self.speech_end = max(self.speech_end, start + spans[-1][1])
            if self.paused and self.state == "open":
                self.paused = False
                self.tell("speaking", None)

    def speech_after_pass(self) -> bool:
        """Has speech come after the audio the last pass saw? (The VAD reads what it has not read.)"""
        self.listen(every_s=0.0)
        return self._speech_since_pass

    def quiet_s(self) -> float:
        """How long the speaker has been quiet, by the VAD's last reading."""
        return (self._checked - self.speech_end) / SAMPLE_RATE if self.speech_end else 0.0

    # --- passes (called by the scheduler) --------------------------------------------------

    def pass_language(self) -> str:
        """What the next pass is told: the language asked for, else one detected surely, else auto."""
        if self.asked:
            return self.asked
        if self.heard is not None and self.heard.text and not unsure(self.heard.probability):
            return self.heard.language or "auto"
        return "auto"

    def correct_language(self, language: str) -> None:
        """The person says which language it is: the next passes and the final text use it."""
        with self._lock:
            if fixed(language) == self.asked:
                return
            self.asked = fixed(language)
            self.agreement = Agreement()  # words heard in another language are not kept
            self._speech_since_pass = self.passes > 0 or self._speech_since_pass  # read again in this language
        self._scheduler.consider(self)

    def needs_translation(self) -> bool:
        """The last pass heard another language than English without translating it."""
        heard = self.heard
        return heard is not None and bool(heard.text) and not is_english(heard.language) and heard.translation is None

    def took_pass(self, heard: Heard, covered: int, asked: str | None) -> None:
        """``asked``: the language asked for when the pass began; a correction since then reads it all again."""
        previous = self.heard
        if heard.probability is None and not self.asked and previous is not None and previous.language == heard.language:
            heard = replace(heard, probability=previous.probability)  # told what an earlier pass detected
        self.heard = heard
        text = heard.text
        self._last_text = text
        self.agreement.update(text.split())
        self.passes += 1
        self._covered = covered
        self._checked = covered  # what the VAD saw after it during the pass is looked at again
        self._speech_since_pass = asked != self.asked  # corrected meanwhile: the next pass hears it anew

    def settle(self, covered: int) -> None:
        self.agreement.settle()
        self.settled = list(self.agreement.committed)
        self.anchor = covered

    def send(self, message: dict) -> None:
        try:
            self._listener(message)
        except Exception as exc:  # a page that went away: its stream ends when its socket does
            log.debug("live stream listener failed: %s", exc)

    def heard_all(self) -> None:
        """The speaker is quiet and the last pass heard every word: ``on_heard`` is told what (once)."""
        heard = self.heard
        if self.paused or self.state != "open" or heard is None or not heard.text.strip() or self.speech_after_pass():
            return
        self.paused = True
        self.tell("pause", heard)

    def tell(self, kind: str, heard: Heard | None) -> None:
        if self._on_heard is not None:
            try:
                self._on_heard(kind, heard)
            except Exception:
                log.exception("live stream listener (%s) failed", kind)

    def send_partial(self) -> None:
        heard = self.heard
        self.send(frame("partial", committed=" ".join(self.agreement.committed),
                        tentative=" ".join(self.agreement.tentative), audio_s=round(self._covered / SAMPLE_RATE, 2),
                        language=heard.language if heard else None,
                        language_probability=None if heard is None or heard.probability is None
                        else round(heard.probability, 3)))
        words = " ".join(self.agreement.committed)
        if heard is not None and words and words != self._told_words and self.state == "open":
            self._told_words = words
            self.tell("words", replace(heard, text=words, translation=None))

    def conclude(self, error: UserFacingError | None = None) -> None:
        with self._lock:
            if self.state == "done":
                return  # concluded already (a preview pass that fails after the final text changes nothing)
            if error is None:
                # The last pass read the whole recording with the upload's beam: its text is the
                # final one (the committed words of the preview were read from shorter audio).
                self._final_text = self._last_text
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
        if self.upstream is not None:
            self._finish_upstream()
        elif busy or self.speech_after_pass() or self.needs_translation():
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
                     pass_after_stop=self.pass_after_stop, heard=self.heard)

    def _finish_upstream(self) -> None:
        """The server that has the recording reads it once; nothing said (by the VAD): no read at all."""
        assert self.upstream is not None  # only called for a recording on a server
        if not (self.passes or self.speech_after_pass()):
            self._last_text = ""
            self.conclude()
            return
        self.pass_after_stop = True
        try:
            self._last_text = self.upstream.finish(self.audio)
            self.passes += 1
            self.conclude()
        except UserFacingError as exc:
            self.conclude(exc)

    def close(self) -> None:
        """Release the audio; a pass still queued for it is skipped."""
        with self._lock:
            if self.state != "done":
                self.state = "closed"
            self.pending = None
            self._pcm = bytearray()
        if self.upstream is not None:
            self.upstream.close()
        self._finished.set()


class LiveTranscriber:
    """Schedules every live stream's passes on the current warm Whisper model, one at a time."""

    def __init__(self, transcriber: Callable[[], Transcriber | AsrPool], cadence_s: float = 1.0, min_new_s: float = 0.3,
                 first_pass_s: float = 0.8, endpoint_s: float = 0.15, window_s: float = 6.0):
        self._transcriber = transcriber  # the current one: a settings change may rebuild it
        self.cadence_s = cadence_s  # at most one partial pass per stream this often
        self.min_new_s = min_new_s  # new audio a partial pass needs
        self.first_pass_s = first_pass_s  # audio the first pass needs: fewer words are not worth a pass
        # quiet after speech that asks for an end-of-speech pass: 0.15 s (was 0.5; the VAD sees it as soon), so a
        # draft starts sooner (benchmarks/bench_drafts.py: 0.3 s -> 0.65x, 0.2 -> 0.61x, 0.15 -> 0.58x of Stop ->
        # image without drafts); a pause within a request costs a pass in place of a partial, and a draft
        # cancelled early (0.01 s of render wasted per request there)
        self.endpoint_s = endpoint_s
        self.window_s = window_s  # with recognition on servers, the most audio one pass reads
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def open(self, listener: Callable[[dict], None], max_audio_s: float, language: str = "auto",
             on_heard: Callable[[str, Heard | None], None] | None = None) -> LiveStream:
        """A new recording's stream; ``on_heard`` hears its words, pauses and speech after them (from the
        transcriber's thread and the feeding one)."""
        stream = LiveStream(self, listener, max_audio_s, language, on_heard)
        stream.upstream = self._transcriber().open_upstream(stream.pcm, stream.asked)
        return stream

    def consider(self, stream: LiveStream) -> None:
        """After new audio: an end-of-speech pass once the speaker is quiet, else a partial pass when
        the cadence allows; either only when speech came after the last pass."""
        if stream.state != "open" or stream.pending is not None or stream.running:
            return
        stream.listen()
        if not stream._speech_since_pass and stream.passes and stream.quiet_s() >= self.endpoint_s:
            stream.heard_all()  # quiet, and the last pass already heard every word: what to draw is known
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
        if final and stream.passes and not stream.speech_after_pass() and not stream.needs_translation():
            stream.conclude()  # the last partial pass already heard everything
            return
        if stream.upstream is not None:
            return self._phrase_pass(stream, end_of_speech=kind == END_OF_SPEECH)
        stream.pass_after_stop = final
        samples = stream.audio()
        asked = stream.asked
        heard = self._transcriber().transcribe_samples(samples, language=stream.pass_language(),
                                                       translate=kind != PARTIAL)
        stream.took_pass(heard, samples.size, asked)
        if final:
            return stream.conclude()
        stream.send_partial()
        if kind == END_OF_SPEECH:
            stream.heard_all()

    def _phrase_pass(self, stream: LiveStream, end_of_speech: bool) -> None:
        """A preview pass of a recording on a server: the audio after the settled words, at most
        ``window_s`` (cut at its last pause; the final text is the server's read of the whole)."""
        start = stream.anchor
        samples = stream.audio(start)
        limit, settle = int(self.window_s * SAMPLE_RATE), end_of_speech
        if samples.size > limit:
            samples = samples[:last_pause(samples[:limit]) or limit]
            settle = True
        asked = stream.asked
        heard = self._transcriber().transcribe_samples(samples, language=asked)
        stream.took_pass(replace(heard, text=" ".join([*stream.settled, *heard.text.split()])), start + samples.size,
                         asked)
        if settle:
            stream.settle(start + samples.size)
        stream.send_partial()
        if end_of_speech:
            stream.heard_all()
