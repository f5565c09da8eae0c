"""Where ComfyUI runs when no address is configured: the usual local ports, each checked to be ComfyUI.

ComfyUI Desktop listens on 8000, the portable and manual installs on 8188. A server counts as
ComfyUI only if its ``GET /system_stats`` answer names ``system.comfyui_version``, so a vLLM on
8000 (or any other web app) is never taken for it. The answer is remembered for a few minutes,
a miss for a few seconds (a ComfyUI started later is found soon), like the LLM discovery in
``llm.py``. With a launcher (``SPEECH2IMAGE_COMFYUI_DIR``), a miss starts the person's own
ComfyUI instead (``launcher.py``).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests

from .protocol import START_HINT, ComfyUnavailable

log = logging.getLogger(__name__)

# Probed in this order when SPEECH2IMAGE_COMFYUI_URL is empty.
DISCOVERY_URLS = (
    "http://127.0.0.1:8188",  # portable and manual installs (python main.py)
    "http://127.0.0.1:8000",  # ComfyUI Desktop (Windows, macOS)
)
MISS_HINT = ("Start ComfyUI (ComfyUI Desktop listens on port 8000, the portable build on 8188), set "
             "SPEECH2IMAGE_COMFYUI_URL to where it runs, or set SPEECH2IMAGE_COMFYUI_DIR to your ComfyUI "
             "folder to have it started for you.")


def comfyui_version(stats) -> str | None:
    """The version a /system_stats answer names; None when the answer is not ComfyUI's."""
    system = stats.get("system") if isinstance(stats, dict) else None
    version = system.get("comfyui_version") if isinstance(system, dict) else None
    return version if isinstance(version, str) and version else None


def device_kind(stats) -> str | None:
    """'cpu' when ComfyUI reports only CPU devices, 'gpu' when any other (cuda, mps, xpu...), None if unknown."""
    devices = stats.get("devices") if isinstance(stats, dict) else None
    kinds = {str(d.get("type", "")).lower() for d in devices or () if isinstance(d, dict)}
    if not kinds:
        return None
    return "cpu" if kinds == {"cpu"} else "gpu"


@dataclass(frozen=True)
class Probe:
    """What answered at one address: ``version`` is set when it is ComfyUI; ``answer`` says it in words."""

    url: str
    version: str | None
    answer: str
    stats: dict | None = None

    @property
    def listening(self) -> bool:
        return self.answer != "nothing answered"


def probe(url: str, timeout_s: float = 0.5) -> Probe:
    """Ask ``url`` for /system_stats and say what it is: ComfyUI, something else, or nothing."""
    url = url.rstrip("/")
    try:
        response = requests.get(url + "/system_stats", timeout=timeout_s)
    except requests.ConnectionError:
        return Probe(url, None, "nothing answered")
    except requests.Timeout:
        return Probe(url, None, f"something accepted the connection but did not answer within {timeout_s:g} s")
    except requests.RequestException as exc:
        return Probe(url, None, f"the request failed ({exc})")
    server = response.headers.get("Server")
    by = f" (server: {server})" if server else ""
    if response.status_code != 200:
        return Probe(url, None, f"something that is not ComfyUI answered HTTP {response.status_code} to "
                                f"/system_stats{by}")
    try:
        stats = response.json()
    except ValueError:
        return Probe(url, None, f"something that is not ComfyUI answered /system_stats with no JSON{by}")
    version = comfyui_version(stats)
    if version is None:
        return Probe(url, None, f"something that is not ComfyUI answered /system_stats without a comfyui_version{by}")
    return Probe(url, version, f"ComfyUI {version}", stats)


@dataclass(frozen=True)
class Found:
    """Where ComfyUI is: ``how`` is 'discovered' (it answered on a probed port) or 'started' (our launcher's);
    ``url`` None when there is none, and ``tried`` says what answered at each address."""

    url: str | None
    how: str = ""
    tried: tuple[Probe, ...] = field(default_factory=tuple)

    def miss_message(self) -> str:
        looked = "; ".join(f"{p.url}: {p.answer}" for p in self.tried)
        return f"No ComfyUI found on this computer ({looked}). {MISS_HINT}"


def launch_address(urls: tuple[str, ...], folder: str) -> str | None:
    """With one ComfyUI address on this computer and a ComfyUI folder set, that address is where the
    folder's ComfyUI is started when nothing answers there (only on loopback: ours never listens wider)."""
    if len(urls) != 1 or not folder:
        return None
    return urls[0] if (urlparse(urls[0]).hostname or "") in ("127.0.0.1", "localhost", "::1") else None


class ComfyDiscovery:
    """The ComfyUI to use when none is configured; safe to share between threads."""

    def __init__(self, candidates: tuple[str, ...] = DISCOVERY_URLS, launcher=None, probe_timeout_s: float = 0.5,
                 cache_ttl_s: float = 180.0, miss_ttl_s: float = 5.0):
        self.candidates = self.usual = tuple(u.rstrip("/") for u in candidates)
        self.launcher = launcher  # launcher.ComfyLauncher, or None: never start one
        self.probe_timeout_s = probe_timeout_s
        self.cache_ttl_s = cache_ttl_s
        self.miss_ttl_s = miss_ttl_s
        self._lock = threading.Lock()
        self._found: tuple[float, Found] | None = None

    def configure_launch(self, folder: str, python: str = "", args: str = "", url: str | None = None) -> None:
        """The ComfyUI folder to start when none answers (empty: never start one), its Python, extra
        arguments for its main.py, and ``url``: the one address to look at and start it on (None: the usual
        ports, and ours on the first)."""
        self.candidates = (url.rstrip("/"),) if url else self.usual
        if self.launcher is not None and self.launcher.configure(folder, python, args, url):
            self.forget()

    def find(self, refresh: bool = False) -> Found:
        """The first candidate that is ComfyUI; else the one our launcher runs or starts now."""
        launcher = self.launcher
        if launcher is not None and launcher.active:  # ours is up or coming up: it watches itself
            return Found(launcher.url, "started")
        with self._lock:
            if not refresh and self._found is not None:
                at, cached = self._found
                if time.monotonic() - at < (self.cache_ttl_s if cached.url else self.miss_ttl_s):
                    return cached
        tried = []
        found = None
        for url in self.candidates:
            answer = probe(url, self.probe_timeout_s)
            tried.append(answer)
            if answer.version:
                found = Found(url, "discovered", tuple(tried))
                log.info("ComfyUI %s found at %s", answer.version, url)
                break
            log.debug("no ComfyUI at %s: %s", url, answer.answer)
        if found is None:
            found = Found(None, "", tuple(tried))
            if launcher is not None and launcher.start_if_idle():
                return Found(launcher.url, "started", tuple(tried))
        with self._lock:
            self._found = (time.monotonic(), found)
        return found

    def forget(self) -> None:
        """Drop the remembered answer, e.g. after the server stopped answering."""
        with self._lock:
            self._found = None

    def starting(self, url: str) -> bool:
        """Whether ``url`` is our launcher's ComfyUI, still coming up."""
        return self.launcher is not None and self.launcher.url == url and self.launcher.state == "starting"

    def wait_started(self, url: str, cancel: threading.Event | None = None) -> None:
        """Until our ComfyUI at ``url`` answers; ComfyUnavailable with the launcher's words if it cannot."""
        if self.launcher is not None and self.launcher.url == url:
            self.launcher.wait_ready(cancel)

    def launch_status(self) -> dict | None:
        """The launcher's state for the health answer and doctor; None without a ComfyUI folder."""
        if self.launcher is None or not self.launcher.enabled:
            return None
        return self.launcher.status()

    def unavailable(self, found: Found) -> ComfyUnavailable:
        """The error for a job when there is no ComfyUI to render it: what each address answered, or why
        the ComfyUI we were to start is not running."""
        launch = self.launch_status()
        if launch and launch.get("error"):
            return ComfyUnavailable(launch["error"])
        if not found.tried:
            return ComfyUnavailable(f"No ComfyUI found. {START_HINT}")
        return ComfyUnavailable(found.miss_message())

    def close(self) -> None:
        """Stop the ComfyUI we started (never one we did not)."""
        if self.launcher is not None:
            self.launcher.stop()
