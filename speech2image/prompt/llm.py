"""Client for an OpenAI-compatible chat server (LM Studio, Ollama, llama.cpp, vLLM).

It finds a server (the configured one, or the first local one that answers with an
OpenAI-style model list and is not a ComfyUI, which also listens on 8000),
asks for structured output in the strongest form the server accepts
(json_schema, then json_object, then plain text) and parses the answer
defensively, because a 200 from a small model proves nothing.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import requests

from ..picture import probe

log = logging.getLogger(__name__)

DEFAULT_URL = "http://localhost:1234/v1"  # LM Studio
# Probed in this order when no URL is configured and LM Studio does not answer.
DISCOVERY_URLS = (
    DEFAULT_URL,
    "http://localhost:11434/v1",  # Ollama
    "http://localhost:8080/v1",  # llama.cpp server
    "http://localhost:8000/v1",  # vLLM
)
RESPONSE_FORMATS = ("json_schema", "json_object", "text")

PROMPT_SCHEMA = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string"},
        "negative_prompt": {"type": "string"},
        "caption": {"type": "string"},
        "mode": {"type": "string", "enum": ["new", "edit"]},
        "strength": {"type": "number"},
    },
    "required": ["prompt", "negative_prompt", "caption"],
}


class LlmError(Exception):
    """The server could not give a usable answer; ``message`` says why for the page."""

    def __init__(self, message: str, server: str | None = None):
        super().__init__(message)
        self.message = message
        self.server = server


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int = 320


def normalize_url(url: str) -> str:
    """Accept 'localhost:1234', 'http://host:1234' or '.../v1' alike."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        url = "http://" + url
    if not url.endswith("/v1"):
        url += "/v1"
    return url


def find_json_object(text: str) -> dict | None:
    """The first JSON object anywhere in the text: inside code fences, after or before prose."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


_FIELD = r'"{name}"\s*:\s*"((?:[^"\\]|\\.)*)"'


def salvage_fields(text: str) -> dict | None:
    """Complete string fields of a JSON object cut off by max_tokens (finish_reason 'length')."""
    found = {}
    for name in ("prompt", "negative_prompt", "caption"):
        match = re.search(_FIELD.format(name=name), text)
        if match:
            try:
                found[name] = json.loads(f'"{match.group(1)}"')
            except json.JSONDecodeError:
                continue
    return found or None


def parse_prompt_fields(text: str) -> dict:
    """Validate the three fields; raise LlmError when the answer is not a usable prompt."""
    data = find_json_object(text) or salvage_fields(text)
    if data is None:
        raise LlmError("the answer held no JSON object")
    fields: dict[str, Any] = {}
    for name in ("prompt", "negative_prompt", "caption"):
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if not isinstance(value, str):
            raise LlmError(f"the answer's '{name}' is not text")
        fields[name] = " ".join(value.split())
    if not fields.get("prompt"):
        raise LlmError("the answer has no 'prompt'")
    # Only in answers about a picture already made: change it ("edit") or make a new one, and how much.
    if str(data.get("mode", "")).strip().lower() in ("new", "edit"):
        fields["mode"] = str(data["mode"]).strip().lower()
    strength = data.get("strength")
    if isinstance(strength, (int, float)) and not isinstance(strength, bool):
        fields["strength"] = float(strength)
    return fields


def _iter_sse_data(response: requests.Response, deadline: float) -> Iterable[str]:
    # An event stream is UTF-8 (the SSE standard); requests would read a bare text/event-stream, as
    # llama.cpp's server sends it, as Latin-1, and one without a Content-Type as bytes.
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise requests.Timeout("the answer took longer than the time limit")
        raw = line.decode("utf-8", "replace")
        if raw and raw.startswith("data:"):
            payload = raw[5:].strip()
            if payload == "[DONE]":
                return
            yield payload


class LlmClient:
    """One per app; safe to share between threads (it holds only caches behind a lock)."""

    def __init__(
        self,
        url: str = "",
        model: str = "",
        timeout_s: float = 60.0,
        connect_timeout_s: float = 2.0,
        discovery_urls: tuple[str, ...] = DISCOVERY_URLS,
        probe_timeout_s: float = 0.5,
        cache_ttl_s: float = 180.0,
        miss_ttl_s: float = 15.0,
    ):
        self.url_setting = url.strip()
        self.model_setting = model.strip()
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.discovery_urls = tuple(normalize_url(u) for u in discovery_urls)
        self.probe_timeout_s = probe_timeout_s
        self.cache_ttl_s = cache_ttl_s
        self.miss_ttl_s = miss_ttl_s  # a server started later is found soon
        self._lock = threading.Lock()
        self._found: tuple[float, str | None, list[str]] | None = None
        self._formats: dict[str, str] = {}  # server -> response_format mode known to work

    @property
    def off(self) -> bool:
        return self.url_setting.lower() == "off"

    def candidates(self) -> tuple[str, ...]:
        if self.off:
            return ()
        if self.url_setting:
            return (normalize_url(self.url_setting),)
        return self.discovery_urls

    def fetch_models(self, server: str, timeout: float | None = None) -> list[str]:
        """The model ids of an OpenAI-style ``{"data": [{"id": ...}, ...]}`` answer; ValueError for any other."""
        response = requests.get(server + "/models", timeout=timeout or self.connect_timeout_s)
        response.raise_for_status()
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in data):
            raise ValueError("the answer to /models is not an OpenAI-style model list")
        return [m["id"] for m in data]

    def _is_comfyui(self, server: str, timeout: float) -> bool:
        """ComfyUI also runs on 8000 (Desktop); one with a custom node may even list models."""
        answer = probe(server.removesuffix("/v1"), timeout)
        if answer.version:
            log.info("%s is ComfyUI %s, not an LLM server; skipped", server, answer.version)
        return answer.version is not None

    def _answering(self):
        """(server, models) for each candidate that is an LLM server, probed one after the other."""
        # An explicitly configured server may be slow to answer; probes of guesses are short.
        probe_s = self.connect_timeout_s if self.url_setting else self.probe_timeout_s
        for server in self.candidates():
            try:
                models = self.fetch_models(server, timeout=probe_s)
            except (requests.RequestException, ValueError) as exc:
                log.debug("no LLM server at %s: %s", server, exc)
                continue
            if self.url_setting or not self._is_comfyui(server, probe_s):
                yield server, models

    def servers(self) -> list[tuple[str, list[str]]]:
        """Every candidate that answers as an LLM server, with its models (discover() stops at the first)."""
        return list(self._answering())

    def discover(self, refresh: bool = False) -> tuple[str | None, list[str]]:
        """(server, models) of the first candidate answering GET /models; cached for a few minutes."""
        with self._lock:
            if not refresh and self._found:
                ttl = self.cache_ttl_s if self._found[1] else self.miss_ttl_s
                if time.monotonic() - self._found[0] < ttl:
                    return self._found[1], self._found[2]
        found: tuple[str | None, list[str]] = next(self._answering(), (None, []))
        with self._lock:
            self._found = (time.monotonic(), *found)
        if found[0]:
            log.info("LLM server %s with models %s", found[0], found[1][:5])
        return found

    def status(self) -> dict:
        """For /api/health: which server and model, or what to do when none answers."""
        if self.off:
            return {"state": "off", "fix": "prompts are written offline; set SPEECH2IMAGE_LLM_URL to use an LLM"}
        server, models = self.discover()
        if server is None:
            return {
                "state": "unreachable",
                "tried": list(self.candidates()),
                "fix": "start LM Studio's local server (Developer tab, port 1234) or set SPEECH2IMAGE_LLM_URL; "
                "until then prompts are written offline",
            }
        model = self.model_setting or (models[0] if models else None)
        return {"state": "ready", "server": server, "model": model, "models": models}

    def forget(self) -> None:
        """Drop the discovery cache, e.g. after the server stopped answering."""
        with self._lock:
            self._found = None

    def choose_model(self, models: list[str], requested: str | None = None) -> str:
        wanted = (requested or self.model_setting or "").strip()
        if wanted:
            return wanted
        if models:
            return models[0]
        raise LlmError("the server lists no models: load one in LM Studio (or pull one in Ollama)")

    def complete_json(
        self,
        messages: list[dict],
        sampling: Sampling,
        model: str | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> tuple[dict, str, str]:
        """Ask for the prompt JSON; returns (fields, model, server). Raises LlmError."""
        server, models = self.discover()
        if server is None:
            tried = ", ".join(self.candidates()) or "none (the LLM is off)"
            raise LlmError(f"no LLM server answered (tried {tried})")
        model_id = self.choose_model(models, model)
        known = self._formats.get(server)
        modes = RESPONSE_FORMATS[RESPONSE_FORMATS.index(known):] if known else RESPONSE_FORMATS
        last_error = None
        for mode in modes:
            try:
                text = self._chat(server, model_id, messages, sampling, mode, on_token)
            except _FormatRefused as refused:
                last_error = refused
                log.info("LLM server %s refused response_format %s: %s", server, mode, refused)
                continue
            except requests.Timeout:
                raise LlmError(f"the LLM server at {server} did not answer within {self.timeout_s:g} s", server)
            except requests.ConnectionError:
                self.forget()
                raise LlmError(f"could not connect to the LLM server at {server}", server)
            except requests.RequestException as exc:
                raise LlmError(f"talking to the LLM server at {server} failed: {exc}", server)
            self._formats[server] = mode
            try:
                return parse_prompt_fields(text), model_id, server
            except LlmError as exc:
                log.info("unusable LLM answer from %s: %s", server, exc.message)
                log.debug("the answer was: %.300r", text)  # may repeat what the person said: debug only
                raise LlmError(f"the LLM at {server} answered, but {exc.message}", server)
        raise LlmError(f"the LLM server at {server} refused the request: {last_error}", server)

    def _chat(self, server, model_id, messages, sampling, mode, on_token) -> str:
        body = {
            "model": model_id,
            "messages": messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "stream": on_token is not None,
        }
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "stable_diffusion_prompt", "strict": True, "schema": PROMPT_SCHEMA},
            }
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": PROMPT_SCHEMA}
        deadline = time.monotonic() + self.timeout_s
        with requests.post(
            server + "/chat/completions",
            json=body,
            timeout=(self.connect_timeout_s, self.timeout_s),
            stream=on_token is not None,
        ) as response:
            if response.status_code >= 400:
                detail = _error_detail(response)
                if mode != "text" and response.status_code in (400, 422, 500):
                    raise _FormatRefused(f"HTTP {response.status_code}: {detail}")
                raise LlmError(f"the LLM server at {server} answered HTTP {response.status_code}: {detail}", server)
            if on_token is None:
                try:
                    return response.json()["choices"][0]["message"]["content"] or ""
                except (ValueError, KeyError, IndexError, TypeError):
                    raise LlmError(f"the LLM server at {server} sent an answer that is not a chat completion", server)
            parts = []
            for payload in _iter_sse_data(response, deadline):
                try:
                    delta = json.loads(payload)["choices"][0].get("delta", {}).get("content")
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    continue  # keep-alives and vendor extras
                if delta:
                    parts.append(delta)
                    on_token(delta)
            return "".join(parts)


class _FormatRefused(Exception):
    pass


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        return str(message or body)[:300]
    except ValueError:
        return response.text[:300].strip() or response.reason
