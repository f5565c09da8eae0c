"""Models load once, in a background thread, and stay warm.

The page is up at once; the first request that needs a model waits for it, and the
health check can say whether it is idle, loading, ready or failed.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..errors import UserFacingError

log = logging.getLogger(__name__)


class BackgroundLoad:
    def __init__(self, load: Callable[[], object], label: str, thread_name: str,
                 failed: Callable[[Exception], UserFacingError]):
        self._load = load
        self.label = label  # for the log: "Whisper model", "TTS piper (en_US-joe-medium)"
        self._failed = failed  # words for the page when the load raised something unexpected
        self._thread_name = thread_name
        self._ready = threading.Event()
        self._start_lock = threading.Lock()
        self._started = False
        self.result: Any = None  # what load returned
        self.error: UserFacingError | None = None
        self.seconds: float | None = None

    def start(self) -> None:
        """Idempotent: the first call starts the thread."""
        with self._start_lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name=self._thread_name, daemon=True).start()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            self.result = self._load()
            self.seconds = time.perf_counter() - started
            log.info("%s ready in %.2f s", self.label, self.seconds)
        except UserFacingError as exc:  # the loader already said what went wrong, in words for the page
            self.error = exc
            log.error("%s unavailable: %s", self.label, exc.message)
        except Exception as exc:
            self.error = self._failed(exc)
            log.exception("%s failed to load", self.label)
        finally:
            self._ready.set()

    def wait(self, timeout: float) -> bool:
        self.start()
        return self._ready.wait(timeout)

    @property
    def state(self) -> str:
        if not self._ready.is_set():
            return "loading" if self._started else "idle"
        return "error" if self.error else "ready"
