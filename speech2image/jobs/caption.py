"""The caption spoken while ComfyUI renders, in the language the person spoke: it never fails the job.
A voice that fails (or none for the language) leaves the picture alone, and the job's notes say why."""
from __future__ import annotations

import logging
from typing import Callable

from ..errors import UserFacingError
from ..metrics import timed
from ..speech import NothingToSay, NoVoiceFor, Voices
from .job import Job
from .store import OutputStore

log = logging.getLogger(__name__)


def speak_caption(job: Job, voices: Voices, store: OutputStore, emit: Callable[[Job, dict], None]) -> None:
    """Speak the job's caption with its voice engine, in its language; never raises."""
    assert job.plan is not None  # the prompt stage ran first
    try:
        with timed(job.timings, "speech"):
            spoken = voices.speak(job.plan.caption, job.settings.tts_engine, language=job.language)
            if spoken is None:
                return
            store.save_audio(job.id, spoken.wav)
        job.audio_url = f"/outputs/{job.id}.wav"
        emit(job, {"type": "audio", "url": job.audio_url, "duration_s": round(spoken.duration_s, 2),
                   "engine": spoken.engine, "voice": spoken.voice, "language": spoken.language})
    except (NothingToSay, NoVoiceFor) as exc:
        no_voice(job, emit, exc.message[:1].upper() + exc.message[1:])
    except UserFacingError as exc:
        voice_failed(job, emit, exc.message)
    except Exception:
        log.exception("speech for job %s failed", job.id)
        voice_failed(job, emit, "the voice could not speak this caption")


def voice_failed(job: Job, emit, message: str) -> None:
    no_voice(job, emit, f"The voice failed: {message}")


def no_voice(job: Job, emit, note: str) -> None:
    job.notes.append(note)
    emit(job, {"type": "audio_error", "message": note})
