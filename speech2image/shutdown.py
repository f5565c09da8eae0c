"""Stopping on SIGTERM or SIGINT (Ctrl+C) without losing a picture.

New jobs are refused at once (503 ``shutting_down``); a job saving its result or carrying
out a cancel is given a few seconds to finish; every other job is left as its write-ahead
row says, rendering in ComfyUI included, and the next start picks it up (``Pipeline.recover``).
Nothing is cancelled in ComfyUI: the picture is worth keeping. A second signal stops at once.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

from flask import Flask

log = logging.getLogger(__name__)


def stop_gracefully_on_signals(app: Flask, grace_s: float = 5.0) -> None:
    """Install the handlers; call from the main thread before serving."""
    pipeline = app.extensions["speech2image"].pipeline
    stopping = threading.Event()

    def finish() -> None:
        if not pipeline.wait_for_saves(grace_s):
            log.warning("a job was still saving after %g s; the next start finishes it", grace_s)
        left = pipeline.unfinished()
        log.info("stopped; %d job(s) in flight will carry on at the next start", len(left))
        pipeline.stop_started_comfyui()  # os._exit skips atexit, where the launcher would stop it
        logging.shutdown()
        os._exit(0)

    def on_signal(signum, _frame) -> None:
        if stopping.is_set():
            os._exit(1)
        stopping.set()
        log.info("%s: taking no new jobs; stopping once results being saved are on disk",
                 signal.Signals(signum).name)
        pipeline.stop_accepting()
        threading.Thread(target=finish, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
