"""Several speech servers as one stage, like the ComfyUI pool: each request goes to the least busy
server that answers (ties in turn, so requests spread evenly); a server that refuses, dies
mid-request or answers garbage is skipped and the request is tried once more on another; when none
is left the request fails with a message naming each server and what it said.

``AsrPool`` stands where ``asr.Transcriber`` stands (transcribe, transcribe_samples, status), and
``TtsPool`` where a ``tts.Speaker`` does (speak, status): the pipeline does not know the difference.
``local`` in a list is the in-process model, one more member; without it, it is never loaded.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

import numpy as np

from ..config import Settings, SpeechServer, parse_speech_urls
from ..errors import BadInput, UserFacingError
from .asr import Heard, Transcript, transcribe_upload
from .languages import fixed
from .members import AsrMember, Member, TtsMember, asr_member, tts_member
from .server import PROBE_TIMEOUT_S, ServerFailed
from .tts import SpokenCaption, check_text, voice_languages, wav_info
from .upstream import Upstream

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Member)  # the kind of member a pool holds: AsrMember or TtsMember
DOWN_FOR_S = 10.0  # a server that failed is skipped this long while another can take the request
STATUS_FOR_S = 3.0  # the servers' Describe answers are reused this long (every open page polls health)


class SpeechServerError(UserFacingError):
    status = 503


class SpeechPool(Generic[M]):
    def __init__(self, members: list[M], what: str, code: str):
        self.members = members
        self.what = what  # "speech recognition", "voice"
        self.code = code
        self._lock = threading.Lock()
        self._busy = {m.url: 0 for m in members}
        self._served = {m.url: 0 for m in members}
        self._down: dict[str, tuple[float, str]] = {}  # url -> (until, what it said)
        self._turn = 0
        self._status: tuple[float, list[dict]] | None = None

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def busy(self) -> dict[str, int]:
        """Requests under way on each server."""
        with self._lock:
            return dict(self._busy)

    def claim(self, tried: dict[str, str], among: frozenset[str] | None = None) -> M | None:
        """The least busy member not tried yet (of the servers ``among``, when given), preferring those not
        down; counted busy at once."""
        with self._lock:
            now = time.monotonic()
            left = [m for m in self.members if m.url not in tried and (among is None or m.url in among)]
            up = [m for m in left if self._down.get(m.url, (0, ""))[0] <= now]
            pool = up or left
            if not pool:
                return None
            self._turn += 1
            order = {m.url: (i - self._turn) % len(self.members) for i, m in enumerate(self.members)}
            member = min(pool, key=lambda m: (self._busy[m.url], order[m.url]))
            self._busy[member.url] += 1
            return member

    def release(self, member: Member, failed: ServerFailed | None, served: bool = True) -> None:
        """No longer busy: served (and up again), failed (skipped a while), or neither (a recording abandoned)."""
        with self._lock:
            self._busy[member.url] -= 1
            if failed is None and not served:
                return
            if failed is None:
                self._served[member.url] += 1
                self._down.pop(member.url, None)
            else:
                self._down[member.url] = (time.monotonic() + DOWN_FOR_S, failed.reason)

    def call(self, work: Callable[[M], object], among: frozenset[str] | None = None):
        """``work(member)`` on the least busy member (of the servers ``among``); once more on another if that
        one fails."""
        tried: dict[str, str] = {}
        for _ in range(2):
            member = self.claim(tried, among)
            if member is None:
                break
            failed = None
            try:
                return work(member)
            except ServerFailed as exc:
                failed = exc
            except UserFacingError:
                raise  # about the request, not the server (e.g. nothing to say)
            except Exception:  # a bug or a library's surprise must not become a 500
                log.exception("%s server %s failed unexpectedly", self.what, member.url)
                failed = ServerFailed("failed unexpectedly (the app's log has the details)")
            finally:
                if failed is not None:
                    tried[member.url] = failed.reason
                    log.warning("%s server %s %s", self.what, member.url, failed.reason)
                self.release(member, failed)
        raise SpeechServerError(self._none_left(tried, among), code=self.code)

    def _none_left(self, tried: dict[str, str], among: frozenset[str] | None = None) -> str:
        said = [f"{url} {reason}" for url, reason in tried.items()]
        with self._lock:
            for url in [m.url for m in self.members if among is None or m.url in among]:
                if url not in tried:
                    down = self._down.get(url)
                    said.append(f"{url} was not tried (the request is retried once)" if down is None
                                else f"{url} was skipped (it {down[1]} moments ago)")
        return f"no {self.what} server could take this: " + "; ".join(said)

    def servers(self) -> list[dict]:
        """Each server: reachable or not, what it offers (from Describe or /models), how busy it is."""
        with self._lock:
            cached = self._status
            if cached is not None and time.monotonic() - cached[0] < STATUS_FOR_S:
                return self._with_counts(cached[1])
        with ThreadPoolExecutor(max_workers=max(1, len(self.members))) as probes:
            answers = list(probes.map(self._probe, self.members))
        with self._lock:
            self._status = (time.monotonic(), answers)
            return self._with_counts(answers)

    def _with_counts(self, answers: list[dict]) -> list[dict]:
        return [{**a, "busy": self._busy.get(a["url"], 0), "served": self._served.get(a["url"], 0)} for a in answers]

    @staticmethod
    def _probe(member: Member) -> dict:
        status = {"url": member.url, "protocol": member.protocol}
        try:
            status.update(member.describe(PROBE_TIMEOUT_S))
            status.setdefault("state", "ready")
        except ServerFailed as exc:
            status.update(state="garbage" if exc.garbage else "unreachable", error=f"{member.url} {exc.reason}")
        return status

    def summary(self, fix: str) -> dict:
        """For the health light: each server with at most SHOWN models, voices and languages (and their counts)."""
        servers = [_trimmed(s) for s in self.servers()]
        states = {s["state"] for s in servers}
        state = "ready" if "ready" in states else "loading" if "loading" in states else "unreachable"
        answer = {"state": state, "servers": servers, "url": ", ".join(self.urls)}
        if state != "ready":
            answer["error"] = "; ".join(s.get("error") or f"{s['url']} is {s['state']}" for s in servers)
            answer["fix"] = fix
        return answer

    def start_loading(self) -> None:
        for member in self.members:
            member.start_loading()


SHOWN = 12


def _trimmed(server: dict) -> dict:
    server = dict(server)
    server.pop("voice_languages", None)
    for key in ("models", "voices", "languages"):
        if len(server.get(key) or []) > SHOWN:
            server[f"{key}_total"] = len(server[key])
            server[key] = server[key][:SHOWN]
    return server


class AsrPool:
    """Speech recognition on the servers of SPEECH2IMAGE_ASR_URL: the Transcriber's interface."""

    def __init__(self, servers: list[SpeechServer], settings: Settings, local: Callable[[], object]):
        self.model = settings.asr_model
        self.language = settings.language
        self.max_audio_s = settings.max_audio_s
        members = [asr_member(s, settings, local) for s in servers]
        self.pool = SpeechPool(members, "speech recognition", "asr_unavailable")

    def start_loading(self, language: str | None = None) -> None:
        self.pool.start_loading()  # a local member loads the model of its own default language

    def wait_ready(self, timeout: float | None = None) -> bool:
        return all(m.wait_ready(timeout or 600) for m in self.pool.members)

    def transcribe(self, audio: bytes, language: str | None = None, translate: bool = False) -> Transcript:
        return transcribe_upload(audio, self.max_audio_s,
                                 lambda samples: self.transcribe_samples(samples, language=language,
                                                                         translate=translate))

    def transcribe_samples(self, samples: np.ndarray, beam_size: int | None = None, language: str | None = None,
                           translate: bool = False) -> Heard:
        """The servers' words (and a translation when the member is this app's own model)."""
        wanted = fixed(language or self.language)

        def work(member: AsrMember):
            return member.transcribe(samples, wanted, self.model, beam_size, translate)

        return self.pool.call(work)

    def open_upstream(self, so_far: Callable[[], bytes], language: str | None = None) -> Upstream:
        """A live recording's audio on a server as it is spoken (``upstream``); ``so_far``: its PCM until now;
        ``language``: the one its job asks for (None: detected)."""
        return Upstream(self.pool, language, self.model, so_far,
                        lambda samples: self.transcribe_samples(samples, language=language).text)

    def status(self) -> dict:
        answer = self.pool.summary("start the speech recognition server (e.g. python -m wyoming_faster_whisper "
                                   "--uri tcp://0.0.0.0:10300 ...) or change SPEECH2IMAGE_ASR_URL (Recognition "
                                   "servers in Settings); 'local' uses the Whisper model in this app")
        return {"model": self.model or "each server's default", "device": "servers", "compute_type": "",
                **answer}


class TtsPool:
    """The caption's voice on the servers of SPEECH2IMAGE_TTS_URL: a Speaker's interface."""

    engine_name = "servers"

    def __init__(self, servers: list[SpeechServer], settings: Settings, local: Callable[[], object]):
        self.voice = settings.tts_server_voice
        members = [tts_member(s, settings, local) for s in servers]
        self.pool = SpeechPool(members, "voice", "tts_failed")

    def start_loading(self) -> None:
        self.pool.start_loading()

    def speak(self, text: str, engine: str = "", voice: str | None = None, among: frozenset[str] | None = None,
              language: str | None = None) -> SpokenCaption:
        """The caption in the configured voice, or in ``voice`` on the servers ``among`` (a language's voice);
        with ``engine``, only on the servers that speak it (BadInput when none does)."""
        text = check_text(text)
        if engine:
            among = frozenset(m.url for m in self.speakers_of(engine)) & (among or frozenset(m.url for m in self.pool.members))
        started = time.perf_counter()
        voice = voice or self.voice

        def work(member: TtsMember):
            wav, _first = member.synthesize(text, voice, engine)
            return member, wav

        member, wav = self.pool.call(work, among)
        sample_rate, duration = wav_info(wav)
        return SpokenCaption(wav=wav, sample_rate=sample_rate, duration_s=duration,
                             elapsed_s=time.perf_counter() - started, engine=member.protocol,
                             voice=f"{member.voice_name(voice)} at {member.url}", language=language)

    def voice_for(self, language: str) -> tuple[str, frozenset[str]] | None:
        """A voice the servers list for a language, and the servers that list it; None when none does."""
        found: dict[str, set[str]] = {}
        for server in self.pool.servers():
            if server.get("state") != "ready" or server["protocol"] == "local":
                continue
            for name in server.get("voices") or []:
                if language in voice_languages(name, (server.get("voice_languages") or {}).get(name)):
                    found.setdefault(name, set()).add(server["url"])
        if not found:
            return None
        name = sorted(found)[0]
        return name, frozenset(found[name])

    def speakers_of(self, engine: str) -> list[TtsMember]:
        """The servers that speak ``engine`` by what they tell (a Wyoming program's name, an OpenAI-compatible
        server's model names, the engine of 'local'). None of those that answered: BadInput saying what each
        speaks. None answered at all: every one (the request then names what each said)."""
        answers = {s["url"]: s for s in self.pool.servers()}
        able: list[TtsMember] = []
        said: list[TtsMember] = []
        for member in self.pool.members:
            info = answers.get(member.url, {})
            if info.get("state") in ("ready", "loading"):
                (able if speaks(info, engine) else said).append(member)
        if able:
            return able
        if not said:
            return self.pool.members
        offers = "; ".join(f"{m.url} speaks with {offered(answers[m.url])}" for m in said)
        others = [m.url for m in self.pool.members if m not in said]
        if others:
            offers += f"; {', '.join(others)} did not answer"
        log.info("voice engine %s refused: %s", engine, offers)
        raise BadInput(f"no voice server speaks with {engine} ({offers}); choose the voice engine they speak "
                       "or 'off' (Settings -> Voice engine)", code="bad_tts_engine")

    def for_engine(self, engine: str) -> "EngineOnServers":
        return EngineOnServers(self, engine)

    def status(self) -> dict:
        answer = self.pool.summary("start the voice server (e.g. python -m wyoming_piper --voice en_US-joe-medium "
                                   "--uri tcp://0.0.0.0:10200 ...) or change SPEECH2IMAGE_TTS_URL (Voice servers "
                                   "in Settings); 'local' uses the voice in this app")
        return {"engine": "servers", "voice": self.voice or "each server's default", **answer}


class EngineOnServers:
    """A job's choice of voice engine while voice servers are set: spoken by the servers that speak it."""

    def __init__(self, pool: TtsPool, engine: str):
        self.pool = pool
        self.engine_name = engine

    def speak(self, text: str) -> SpokenCaption:
        return self.pool.speak(text, self.engine_name)

    def status(self) -> dict:
        return self.pool.status()

    def start_loading(self) -> None:
        pass


def speaks(info: dict, engine: str) -> bool:
    """Whether a server's Describe or model list names the engine (wyoming-piper's program is 'piper')."""
    return any(engine in name.lower() for name in [info.get("program") or "", *(info.get("models") or [])])


def offered(info: dict) -> str:
    return (", ".join(info.get("models") or []) if info.get("protocol") == "openai" else info.get("program")) \
        or "an engine it does not name"


def pools_wanted(value: str) -> list[SpeechServer] | None:
    """The servers of a URL list, or None for an empty one (only the model in this app, as before)."""
    servers = parse_speech_urls(value)
    return servers or None
