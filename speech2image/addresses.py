"""The speech servers a person may list (SPEECH2IMAGE_ASR_URL, _TTS_URL): their accepted forms,
parsed and checked. Kept apart from ``config`` so that the settings stay one screenful of fields."""
from __future__ import annotations

import re
from dataclasses import dataclass

HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*)$")
SPEECH_URL_FORMS = ("local (the model inside this app), tcp://host:port (a Wyoming server such as wyoming-faster-whisper "
                    "or wyoming-piper) or http(s)://host:port/v1 (an OpenAI-compatible audio server); several: "
                    "comma-separated")


@dataclass(frozen=True)
class SpeechServer:
    """One entry of SPEECH2IMAGE_ASR_URL or _TTS_URL: ``protocol`` is local, wyoming or openai."""

    url: str
    protocol: str
    host: str = ""
    port: int = 0


def parse_speech_urls(value: str) -> list[SpeechServer]:
    """The speech servers of a comma-separated list; ValueError naming the bad entry and the accepted forms."""
    from urllib.parse import urlsplit

    servers = []
    for raw in (value or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry.lower() == "local":
            servers.append(SpeechServer("local", "local"))
            continue
        try:
            parts = urlsplit(entry)
            port = parts.port
        except ValueError:
            raise ValueError(f"'{entry}' has a malformed host or port; use {SPEECH_URL_FORMS}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("tcp", "http", "https"):
            raise ValueError(f"'{entry}' has an unknown scheme{f' {scheme}://' if scheme else ''}; use "
                             f"{SPEECH_URL_FORMS}")
        host = parts.hostname or ""
        if not HOST.match(host if ":" not in host else f"[{host}]") or parts.username or parts.password:
            raise ValueError(f"'{entry}' has a malformed host; use {SPEECH_URL_FORMS}")
        if scheme == "tcp":
            if port is None or parts.path not in ("", "/") or parts.query:
                raise ValueError(f"'{entry}' needs a port and nothing after it, e.g. tcp://127.0.0.1:10300 "
                                 "(wyoming-faster-whisper) or tcp://127.0.0.1:10200 (wyoming-piper)")
            servers.append(SpeechServer(f"tcp://{parts.netloc}", "wyoming", host, port))
        else:
            servers.append(SpeechServer(entry.rstrip("/"), "openai", host, port or (443 if scheme == "https" else 80)))
    if len({s.url for s in servers}) < len(servers):
        raise ValueError("a speech server is listed twice")
    return servers


def speech_urls_problem(value: str):
    try:
        parse_speech_urls(value)
        return True
    except ValueError as exc:
        return f"is not a list of speech servers: {exc}"
