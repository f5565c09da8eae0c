"""The speech stage, both ends of a request: hearing the person (Whisper) and speaking the caption.

``asr`` is the local Whisper (faster-whisper, loaded once and kept warm by ``warm``), reading a short
recording in the window ``window`` fits to it; ``stream`` transcribes a recording live while it is
spoken; ``tts`` holds the local voices (Piper, Coqui, espeak-ng). Speech on other machines: ``wyoming``
speaks the Home Assistant voice protocol (wyoming-faster-whisper, wyoming-piper), ``openai_audio`` the
OpenAI-compatible audio API; ``members`` wraps each server (and ``local``) as one member of a ``pool``:
least busy first, a dead server skipped, a failed request retried once elsewhere.
"""
from .asr import (
           BUNDLED,
           NO_SPEECH_MESSAGE,
           SAMPLE_RATE,
           Transcriber,
           Transcript,
           decode_audio,
           transcribe_upload,
)
from .pool import AsrPool, SpeechServerError, TtsPool
from .server import ServerFailed
from .stream import LiveTranscriber, check_start, frame
from .tts import (
           ENGINES,
           NothingToSay,
           Speaker,
           SpokenCaption,
           TtsError,
           Voices,
           check_text,
           wav_info,
)

__all__ = ["BUNDLED", "ENGINES", "NO_SPEECH_MESSAGE", "SAMPLE_RATE", "AsrPool", "LiveTranscriber", "NothingToSay",
           "ServerFailed", "Speaker", "SpeechServerError", "SpokenCaption", "Transcriber", "Transcript", "TtsError",
           "TtsPool", "Voices", "check_start", "check_text", "decode_audio", "frame", "transcribe_upload", "wav_info"]
