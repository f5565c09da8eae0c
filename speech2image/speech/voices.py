"""Which voice speaks a caption: the engine chosen, or, for a caption in another language, a voice of
that language — never an English voice reading another language.

For a caption in language L (not English), in this order:
1. Piper with a voice for L: the configured Piper voice when it speaks L, else one of the voices folder
   (``SPEECH2IMAGE_TTS_VOICES_DIR``: any ``*.onnx`` with its ``.onnx.json``);
2. a voice server's voice for L, when one lists it (Wyoming declares its voices' languages; an
   OpenAI-compatible server's voice names say theirs, e.g. ``de_DE-thorsten`` or Kokoro's ``jf_alpha``);
3. espeak-ng's voice for L (it covers about 100 languages), in its ``+m3`` variant: of the voices
   tried, the one Whisper base most often hears as the right language (German, French and Spanish
   captions: 7 of 9 against 4 of 9 for the plain voice);
4. else no voice, and the note says what to add.
Each voice loads once and stays warm.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path

from ..errors import BadInput
from .languages import espeak_voice, is_english, language_name
from .tts import ENGINES, Speaker, SpokenCaption, TtsError, check_text, piper_voice_language

log = logging.getLogger(__name__)
ESPEAK_VARIANT = "+m3"


class NoVoiceFor(TtsError):
    code = "no_voice_for_language"


class Voices:
    """One warm Speaker per engine, so switching engines on the page does not reload the others;
    with voice servers configured, they speak for every engine but 'off' (a job's other engine: the
    servers that speak it, else refused) and no engine's model is loaded here."""

    def __init__(self, default_engine: str, voice: str = "", coqui_model_path: str = "", coqui_config_path: str = "",
                 servers=None, voices_dir: str = ""):
        """``servers``: a pool of voice servers (speech.TtsPool) that speaks for the default engine, and for
        another engine a job names through the servers that speak it. ``voices_dir``: a folder of Piper
        voices for captions in other languages."""
        self.default_engine = default_engine
        self.servers = servers
        self.options = {"voice": voice, "coqui_model_path": coqui_model_path, "coqui_config_path": coqui_config_path}
        self.voices_dir = Path(voices_dir).expanduser() if voices_dir else None
        self._speakers: dict[tuple[str, str], Speaker] = {}
        self._lock = threading.Lock()
        self._folder: dict[str, Path] | None = None

    def check(self, engine: str) -> None:
        """A job's engine choice: BadInput now, before anything runs, when the voice servers cannot speak it."""
        if self.servers is not None and engine not in ("", "off", self.default_engine):
            self.servers.speakers_of(engine)

    def get(self, engine: str | None = None):
        """The engine's speaker: the voice servers (those that speak it) when servers are set, else this app's."""
        name = engine or self.default_engine
        if name not in ENGINES:
            raise BadInput(f"unknown TTS engine '{name}'; choose one of {', '.join(ENGINES)}", code="bad_tts_engine")
        if self.servers is not None and name != "off":
            return self.servers if name == self.default_engine else self.servers.for_engine(name)
        return self._speaker(name, self.options["voice"] if name == self.default_engine else "")

    def _speaker(self, engine: str, voice: str) -> Speaker:
        with self._lock:
            if (engine, voice) not in self._speakers:
                self._speakers[(engine, voice)] = Speaker(engine, voice, self.options["coqui_model_path"],
                                                          self.options["coqui_config_path"])
            return self._speakers[(engine, voice)]

    def speak(self, text: str, engine: str | None = None, language: str | None = None) -> SpokenCaption | None:
        """The caption spoken by the engine (None when it is off), or by a voice of the caption's ``language``
        when that is not English; NoVoiceFor when no voice here speaks it."""
        name = engine or self.default_engine
        if name not in ENGINES:
            raise BadInput(f"unknown TTS engine '{name}'; choose one of {', '.join(ENGINES)}", code="bad_tts_engine")
        text = check_text(text)
        if name == "off" or language is None or is_english(language):
            return self.get(name).speak(text)
        piper = self.piper_voice(language, name)
        if piper is not None:
            return _with_language(self._speaker("piper", piper).speak(text), language)
        served = self.servers.voice_for(language) if self.servers is not None else None
        if served is not None:
            return self.servers.speak(text, voice=served[0], among=served[1], language=language)
        espeak = espeak_voice(language)
        if espeak is not None:
            return _with_language(self._speaker("espeak", espeak + ESPEAK_VARIANT).speak(text), language)
        raise NoVoiceFor(f"no voice here speaks {language_name(language)}, so the caption is not read aloud (an "
                         f"English voice would not say it right): put a Piper voice for it in the voices folder "
                         "(Settings, SPEECH2IMAGE_TTS_VOICES_DIR) or install espeak-ng")

    def piper_voice(self, language: str, engine: str) -> str | None:
        """The path of a Piper voice for a language: the configured one when it speaks it, else the folder's."""
        configured = self.options["voice"]
        if engine == "piper" and configured and piper_voice_language(Path(configured).expanduser()) == language:
            return configured
        folder = self.folder_voices()
        return str(folder[language]) if language in folder else None

    def folder_voices(self) -> dict[str, Path]:
        """The voices folder's Piper voices by language (the first by name of each), read once."""
        if self._folder is None:
            found: dict[str, Path] = {}
            if self.voices_dir is not None:
                for path in sorted(self.voices_dir.glob("*.onnx")):
                    language = piper_voice_language(path) if Path(f"{path}.json").is_file() else None
                    if language:
                        found.setdefault(language, path)
                log.info("voices folder %s: %s", self.voices_dir,
                         ", ".join(f"{lang} ({path.stem})" for lang, path in found.items()) or "no Piper voice")
            self._folder = found
        return self._folder


def _with_language(spoken: SpokenCaption | None, language: str) -> SpokenCaption | None:
    return None if spoken is None else replace(spoken, language=language)
