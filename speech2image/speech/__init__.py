"""Speech on other machines: Whisper and the voice as servers, pooled like ComfyUI.

``wyoming`` speaks the Home Assistant voice protocol (wyoming-faster-whisper, wyoming-piper) through
the ``wyoming`` package; ``openai_audio`` the OpenAI-compatible audio API (speaches, LocalAI,
Kokoro-FastAPI, vLLM); ``pool`` makes several servers (and ``local``, the model in this app) one
stage: least busy first, a dead server skipped, a failed request retried once elsewhere.
"""
from .pool import AsrPool, SpeechServerError, TtsPool
from .server import ServerFailed

__all__ = ["AsrPool", "ServerFailed", "SpeechServerError", "TtsPool"]
