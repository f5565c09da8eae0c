"""The speech stage, both ends of a request: hearing the person (Whisper) and speaking the caption.

``asr`` is the local Whisper (faster-whisper, loaded once and kept warm by ``warm``), reading a short
recording in the window ``window`` fits to it; ``models`` says which model hears a language (tiny.en for
English, the multilingual base, assembled once from its packages, for the others) and ``languages``
lists the languages Whisper knows; ``stream`` transcribes a recording live while it is spoken; ``tts``
holds the local voices (Piper, Coqui, espeak-ng) and ``voices`` picks the one that speaks a caption, in
the caption's language. Speech on other machines: ``wyoming`` speaks the Home Assistant voice protocol
(wyoming-faster-whisper, wyoming-piper), ``openai_audio`` the OpenAI-compatible audio API; ``members``
wraps each server (and ``local``) as one member of a ``pool``: least busy first, a dead server skipped,
a failed request retried once elsewhere.
"""
from .asr import (
           NO_SPEECH_MESSAGE,
           SAMPLE_RATE,
           Heard,
           Transcriber,
           Transcript,
           decode_audio,
           transcribe_upload,
)
from .frames import check_start, frame
from .languages import (
           AUTO,
           LANGUAGE_CHOICES,
           LANGUAGES,
           UNSURE_BELOW,
           fixed,
           is_english,
           language_name,
           unsure,
)
from .models import BUNDLED, bundled_model_path, multilingual_model_path
from .pool import AsrPool, SpeechServerError, TtsPool
from .server import ServerFailed
from .stream import LiveTranscriber
from .tts import (
           ENGINES,
           NothingToSay,
           Speaker,
           SpokenCaption,
           TtsError,
           check_text,
           wav_info,
)
from .voices import NoVoiceFor, Voices

__all__ = ["AUTO", "BUNDLED", "ENGINES", "LANGUAGES", "LANGUAGE_CHOICES", "NO_SPEECH_MESSAGE", "SAMPLE_RATE",
           "UNSURE_BELOW", "AsrPool", "Heard", "LiveTranscriber", "NoVoiceFor", "NothingToSay", "ServerFailed",
           "Speaker", "SpeechServerError", "SpokenCaption", "Transcriber", "Transcript", "TtsError", "TtsPool",
           "Voices", "bundled_model_path", "check_start", "check_text", "decode_audio", "fixed", "frame",
           "is_english", "language_name", "multilingual_model_path", "transcribe_upload", "unsure", "wav_info"]
