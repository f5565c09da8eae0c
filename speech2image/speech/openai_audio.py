"""One OpenAI-compatible audio server (speaches, LocalAI, vLLM, Kokoro-FastAPI; what Open WebUI's
STT/TTS settings speak): ``POST /v1/audio/transcriptions`` (multipart file, model, language,
response_format=json) and ``POST /v1/audio/speech`` (JSON model, voice, input, response_format=wav),
with an optional bearer token. Models from ``GET /v1/models`` where the server has it (PyPI's
faster-whisper-server answers it 404: it lists no model and serves its one model under any name);
voices from ``GET /v1/audio/voices`` where the server has it (Kokoro-FastAPI does; the OpenAI API
itself does not). Errors are read in OpenAI's shape (``{"error": {"message"}}``) and FastAPI's
(``{"detail": ...}``, also ``{"detail": {"error": {"message"}}}``).
"""
from __future__ import annotations

import time

import numpy as np
import requests

from ..config import SpeechServer
from .server import (
    CONNECT_TIMEOUT_S,
    ServerFailed,
    check_wav,
    describe_bytes,
    pcm16,
    wav_from_pcm,
)

DEFAULT_ASR_MODEL = "whisper-1"  # OpenAI's name; servers that serve one model accept it
DEFAULT_TTS_MODEL = "tts-1"
DEFAULT_VOICE = "alloy"
ASR_HINTS = ("whisper", "stt", "asr", "parakeet")
TTS_HINTS = ("tts", "kokoro", "piper", "voice", "speech")


def _headers(api_key: str) -> dict:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _request(method: str, url: str, api_key: str, timeout_s: float, **kwargs) -> requests.Response:
    """The answer, or ServerFailed."""
    answer = _answer(method, url, api_key, timeout_s, missing_ok=False, **kwargs)
    assert answer is not None  # only a missing_ok request answers None
    return answer


def _answer(method: str, url: str, api_key: str, timeout_s: float, missing_ok: bool = False,
            **kwargs) -> requests.Response | None:
    """The answer, or ServerFailed; with ``missing_ok``, None for a 404 in JSON (an API without that path)."""
    try:
        answer = requests.request(method, url, headers=_headers(api_key), timeout=(CONNECT_TIMEOUT_S, timeout_s),
                                  **kwargs)
    except requests.exceptions.ConnectTimeout:
        raise ServerFailed(f"did not accept a connection within {CONNECT_TIMEOUT_S:g} s") from None
    except requests.exceptions.ReadTimeout:
        raise ServerFailed(f"did not answer within {timeout_s:g} s") from None
    except requests.exceptions.ConnectionError as exc:
        if "NewConnectionError" in repr(exc) or "Connection refused" in str(exc):
            raise ServerFailed("refused the connection") from None
        raise ServerFailed("closed the connection mid-request") from None
    except requests.RequestException as exc:
        raise ServerFailed(f"could not be asked ({type(exc).__name__})") from None
    if missing_ok and answer.status_code == 404 and "json" in answer.headers.get("Content-Type", ""):
        return None
    if answer.status_code >= 400:
        raise ServerFailed(f"answered HTTP {answer.status_code}: {_error_text(answer)}")
    return answer


def _error_text(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return describe_bytes(answer.content)
    return _message_in(body)[:300]


def _message_in(body, depth: int = 0) -> str:
    """The words of an error answer: OpenAI's {"error": {"message"}}, FastAPI's {"detail": ...}, or itself."""
    if isinstance(body, dict) and depth < 3:
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict):
                return _message_in(value, depth + 1)
            if isinstance(value, list) and value and all(isinstance(v, dict) and "msg" in v for v in value):
                return "; ".join(str(v["msg"]) for v in value)  # FastAPI's validation errors (422)
    return str(body)


def _json(answer: requests.Response, what: str):
    try:
        return answer.json()
    except ValueError:
        raise ServerFailed(f"answered something that is not JSON to {what} ({describe_bytes(answer.content)})",
                           garbage=True) from None


def list_models(server: SpeechServer, api_key: str, timeout_s: float) -> list[str]:
    """The server's model ids; none where it has no GET /models but answers in JSON (an API without a list)."""
    answer = _answer("GET", f"{server.url}/models", api_key, timeout_s, missing_ok=True)
    if answer is None:
        return []
    body = _json(answer, "GET /models")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ServerFailed("answered GET /models without a 'data' list: not an OpenAI-compatible server",
                           garbage=True)
    return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]


def list_voices(server: SpeechServer, api_key: str, timeout_s: float) -> list[str]:
    """Kokoro-FastAPI's voice list; an empty list where the server has none."""
    try:
        body = _request("GET", f"{server.url}/audio/voices", api_key, timeout_s).json()
    except (ServerFailed, ValueError):
        return []
    voices = body.get("voices") if isinstance(body, dict) else body
    if not isinstance(voices, list):
        return []
    return [str(v.get("id") or v.get("name")) if isinstance(v, dict) else str(v) for v in voices if v]


def pick(models: list[str], hints: tuple[str, ...], fallback: str) -> str:
    """The first listed model whose id names the task, else the OpenAI name most servers map."""
    return next((m for m in models if any(h in m.lower() for h in hints)), fallback)


def transcribe(server: SpeechServer, samples: np.ndarray, language: str | None, model: str, api_key: str,
               timeout_s: float) -> str:
    wav = wav_from_pcm(pcm16(samples), 16000)
    fields = {"model": model, "response_format": "json"}
    if language:
        fields["language"] = language
    answer = _request("POST", f"{server.url}/audio/transcriptions", api_key, timeout_s,
                      files={"file": ("speech.wav", wav, "audio/wav")}, data=fields)
    body = _json(answer, "the transcription")
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise ServerFailed(f"answered the transcription without a 'text' ({describe_bytes(answer.content)})",
                           garbage=True)
    return body["text"].strip()


def synthesize(server: SpeechServer, text: str, model: str, voice: str, api_key: str,
               timeout_s: float) -> tuple[bytes, float]:
    """The WAV and the seconds to its first bytes."""
    started = time.perf_counter()
    answer = _request("POST", f"{server.url}/audio/speech", api_key, timeout_s, stream=True,
                      json={"model": model, "voice": voice, "input": text, "response_format": "wav"})
    first, data = None, bytearray()
    try:
        for chunk in answer.iter_content(chunk_size=16384):
            first = first if first is not None else time.perf_counter() - started
            data += chunk
    except requests.RequestException:
        raise ServerFailed("closed the connection mid-request") from None
    return check_wav(bytes(data)), first or 0.0
