"""The caption spoken while ComfyUI renders, in the language the person spoke: a job's voice in a worker
beside the render, so it is ready with the picture. It never fails the job: a voice that fails (or none
for the language) leaves the picture alone, and the job's notes say why."""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from ..errors import UserFacingError
from ..metrics import timed
from ..speech import NothingToSay, NoVoiceFor, Voices
from .job import Job
from .store import OutputStore

log = logging.getLogger(__name__)


class Speaker:
    """Speaks jobs' captions (two at a time) and tells their tabs through ``emit(job, event)``."""

    def __init__(self, emit: Callable[[Job, dict], None], store: OutputStore, wait_s: float = 120.0):
        self.emit = emit
        self.store = store
        self.wait_s = wait_s  # how long a finished render waits for its voice
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="speech")

    def start(self, job: Job, voices: Voices) -> Future:
        return self._executor.submit(self._speak, job, voices)

    def wait(self, job: Job, speech: Future) -> None:
        try:
            speech.result(timeout=self.wait_s)
        except Exception:
            self._failed(job, f"no audio after {self.wait_s:g} s")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _speak(self, job: Job, voices: Voices) -> None:
        """Speak the job's caption with its voice engine, in its language; never raises."""
        assert job.plan is not None  # the prompt stage ran first
        try:
            with timed(job.timings, "speech"):
                spoken = voices.speak(job.plan.caption, job.settings.tts_engine, language=job.language)
                if spoken is None:
                    return
                self.store.save_audio(job.id, spoken.wav)
            job.audio_url = f"/outputs/{job.id}.wav"
            self.emit(job, {"type": "audio", "url": job.audio_url, "duration_s": round(spoken.duration_s, 2),
                            "engine": spoken.engine, "voice": spoken.voice, "language": spoken.language})
        except (NothingToSay, NoVoiceFor) as exc:
            self._no_voice(job, exc.message[:1].upper() + exc.message[1:])
        except UserFacingError as exc:
            self._failed(job, exc.message)
        except Exception:
            log.exception("speech for job %s failed", job.id)
            self._failed(job, "the voice could not speak this caption")

    def _failed(self, job: Job, message: str) -> None:
        self._no_voice(job, f"The voice failed: {message}")

    def _no_voice(self, job: Job, note: str) -> None:
        job.notes.append(note)
        self.emit(job, {"type": "audio_error", "message": note})
