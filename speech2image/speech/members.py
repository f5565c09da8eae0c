"""A pool's members: one per entry of a URL list, each with the same small interface whatever the
protocol (``describe``, and ``transcribe`` or ``synthesize``), raising ``ServerFailed`` for anything
that should send the request to another member."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..config import Settings, SpeechServer
from ..errors import UserFacingError
from . import openai_audio, wyoming
from .asr import Heard
from .server import ServerFailed

MODELS_FOR_S = 60.0  # an OpenAI-compatible server's model list is asked again after this long


class Member:
    protocol = "?"

    def __init__(self, server: SpeechServer, settings: Settings):
        self.server = server
        self.url = server.url
        self.timeout_s = settings.speech_timeout_s
        self.api_key = settings.speech_api_key

    def describe(self, timeout_s: float) -> dict:
        raise NotImplementedError

    def models(self) -> list[str]:
        """The models the server lists (asked again after MODELS_FOR_S); none known here."""
        return []

    def start_loading(self) -> None:
        pass

    def wait_ready(self, timeout: float) -> bool:
        return True


class _OpenAi(Member):
    protocol = "openai"

    def __init__(self, server, settings):
        super().__init__(server, settings)
        self._models: tuple[float, list[str]] | None = None

    def models(self, timeout_s: float | None = None) -> list[str]:
        if self._models is None or time.monotonic() - self._models[0] > MODELS_FOR_S:
            self._models = (time.monotonic(), openai_audio.list_models(self.server, self.api_key,
                                                                       timeout_s or self.timeout_s))
        return self._models[1]


# --- speech recognition -------------------------------------------------------------------


class AsrMember(Member):
    streams = False  # takes a recording's audio as it is spoken (open_stream)

    def transcribe(self, samples: np.ndarray, language: str | None, model: str, beam_size: int | None,
                   translate: bool = False) -> Heard:
        """What the server heard: a remote one says only the words (in the language asked for, if any);
        only the model in this app translates."""
        raise NotImplementedError

    def open_stream(self, language: str | None, model: str) -> wyoming.Upload:
        raise NotImplementedError

    def model_for(self, model: str) -> str | None:
        """SPEECH2IMAGE_ASR_MODEL where this server lists it, else None: its own default. (A mixed pool's
        servers name their models differently; a name one of them lists means nothing to the others.)"""
        return model if model and model in self.models() else None


class WyomingAsr(AsrMember):
    protocol = "wyoming"

    def __init__(self, server, settings):
        super().__init__(server, settings)
        self._models: tuple[float, list[str]] | None = None

    def describe(self, timeout_s):
        info = wyoming.asr_info(wyoming.describe(self.server, timeout_s))
        if not info["models"]:
            raise ServerFailed("is a Wyoming server without speech recognition (no asr in its Describe)")
        self._models = (time.monotonic(), info["models"])
        return info

    def models(self) -> list[str]:
        if self._models is None or time.monotonic() - self._models[0] > MODELS_FOR_S:
            self.describe(self.timeout_s)
        assert self._models is not None  # describe() keeps what it read
        return self._models[1]

    def transcribe(self, samples, language, model, beam_size, translate=False):
        return Heard(wyoming.transcribe(self.server, samples, language, self.model_for(model), self.timeout_s),
                     language)

    streams = True

    def open_stream(self, language, model):
        return wyoming.Upload(self.server, language, self.model_for(model), self.timeout_s)


class OpenAiAsr(AsrMember, _OpenAi):
    def describe(self, timeout_s):
        return {"models": self.models(timeout_s), "program": "OpenAI-compatible audio API"}

    def transcribe(self, samples, language, model, beam_size, translate=False):
        model = self.model_for(model) or openai_audio.pick(self.models(), openai_audio.ASR_HINTS,
                                                           openai_audio.DEFAULT_ASR_MODEL)
        return Heard(openai_audio.transcribe(self.server, samples, language, model, self.api_key, self.timeout_s),
                     language)


class _Local(Member):
    """The model in this app (``local`` in the list): built, and so loaded, only when listed."""

    protocol = "local"

    def __init__(self, server, settings, model):
        super().__init__(server, settings)
        self.model = model  # a Transcriber or a Speaker

    def start_loading(self):
        self.model.start_loading()

    def _state(self) -> tuple[dict, dict]:
        status = self.model.status()
        state = {"idle": "ready", "off": "ready"}.get(status["state"], status["state"])
        info = {"state": state}
        if status.get("error"):
            info["error"] = f"local {status['error']}"
        return status, info


class LocalAsr(AsrMember, _Local):
    def wait_ready(self, timeout):
        return self.model.wait_ready(timeout)

    def describe(self, timeout_s):
        status, info = self._state()
        return {**info, "models": [status["model"]], "program": f"faster-whisper on {status['device']}"}

    def transcribe(self, samples, language, model, beam_size, translate=False):
        try:
            return self.model.transcribe_samples(samples, beam_size, language=language or "auto", translate=translate)
        except UserFacingError as exc:
            raise ServerFailed(exc.message) from None


def asr_member(server: SpeechServer, settings: Settings, local: Callable[[], object]) -> AsrMember:
    if server.protocol == "local":
        return LocalAsr(server, settings, local())
    return (WyomingAsr if server.protocol == "wyoming" else OpenAiAsr)(server, settings)


# --- voice -------------------------------------------------------------------------------


class TtsMember(Member):
    def synthesize(self, text: str, voice: str, engine: str = "") -> tuple[bytes, float]:
        """The WAV and the seconds to its first audio; ``engine``: the one a job chose, where the server offers
        several (an OpenAI-compatible server's models); a Wyoming server or 'local' is one engine."""
        raise NotImplementedError

    def voice_name(self, voice: str) -> str:
        return voice or "its default voice"


class WyomingTts(TtsMember):
    protocol = "wyoming"

    def describe(self, timeout_s):
        info = wyoming.tts_info(wyoming.describe(self.server, timeout_s))
        if not info["voices"]:
            raise ServerFailed("is a Wyoming server without a voice (no tts in its Describe)")
        return info

    def synthesize(self, text, voice, engine=""):
        return wyoming.synthesize(self.server, text, voice or None, self.timeout_s)


class OpenAiTts(TtsMember, _OpenAi):
    def __init__(self, server, settings):
        super().__init__(server, settings)
        self._voices: list[str] | None = None

    def voices(self, timeout_s: float) -> list[str]:
        if self._voices is None:
            self._voices = openai_audio.list_voices(self.server, self.api_key, timeout_s)
        return self._voices

    def describe(self, timeout_s):
        return {"models": self.models(timeout_s), "voices": self.voices(timeout_s),
                "program": "OpenAI-compatible audio API"}

    def voice_name(self, voice):
        return voice or (self._voices or [openai_audio.DEFAULT_VOICE])[0]

    def synthesize(self, text, voice, engine=""):
        model = openai_audio.pick(self.models(), openai_audio.TTS_HINTS, openai_audio.DEFAULT_TTS_MODEL)
        model = openai_audio.pick(self.models(), (engine,), model) if engine else model
        voice = voice or (self.voices(self.timeout_s) or [openai_audio.DEFAULT_VOICE])[0]
        return openai_audio.synthesize(self.server, text, model, voice, self.api_key, self.timeout_s)


class LocalTts(TtsMember, _Local):
    def describe(self, timeout_s):
        status, info = self._state()
        return {**info, "voices": [self.voice_name("")], "program": f"{status['engine']} in this app"}

    def voice_name(self, voice):
        status = self.model.status()
        return status.get("voice") or status["engine"]

    def synthesize(self, text, voice, engine=""):
        started = time.perf_counter()
        try:
            spoken = self.model.speak(text)
        except UserFacingError as exc:
            raise ServerFailed(exc.message) from None
        if spoken is None:
            raise ServerFailed("is switched off (voice engine 'off')")
        return spoken.wav, time.perf_counter() - started


def tts_member(server: SpeechServer, settings: Settings, local: Callable[[], object]) -> TtsMember:
    if server.protocol == "local":
        return LocalTts(server, settings, local())
    return (WyomingTts if server.protocol == "wyoming" else OpenAiTts)(server, settings)

