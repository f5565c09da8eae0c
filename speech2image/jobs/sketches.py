"""Live sketches: while the person speaks, each phrase the live transcript commits redraws a quick sketch
in the tab's result area, for models fast enough that it keeps up (Turbo, Lightning, LCM, Flux schnell
on a GPU).

A tab has at most one sketch in ComfyUI; the newest words wait, and words overtaken while they waited are
never drawn (newest wins). A sketch is drawn small and in few steps (``picture.SKETCH``) from the prompt
the offline rewriter writes at once, and its picture goes to the tab as a ``sketch`` event (a JPEG data
URL): it is no job and no draft, so no row, no file, no gallery entry. The tab's sketching stops at the
pause (its draft, drawn with the full recipe, takes over), at Stop and when the recording ends. Fair to
others as drafts are (the drafts' ``busy`` rule): none while a job is under way or ComfyUI's queue holds
work. Wanted when the tab's ``drafts`` setting is ``sketch``, or ``auto`` and the model's last full
render took under ``FAST_RENDER_S`` (``ModelCatalog.render_seconds``).
"""
from __future__ import annotations

import base64
import dataclasses
import io
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

from PIL import Image

from ..config import FAST_RENDER_S, Settings
from ..metrics import Metrics
from ..picture import ComfyPool, RenderCancelled, WorkflowLibrary
from ..prompt import PromptPlan, PromptWriter
from .edits import Pictures
from .job import EventHub, JobRequest


class Host(Protocol):
    """What sketches (and drafts) use of the pipeline that holds them (``pipeline.Pipeline``)."""

    settings: Settings
    accepting: bool
    pictures: Pictures
    workflows: WorkflowLibrary
    prompt_writer: PromptWriter
    metrics: Metrics
    hub: EventHub

    @property
    def comfy(self) -> ComfyPool: ...
    def write_plan(self, request: JobRequest, settings: Settings, transcript: str | None, **hooks) -> PromptPlan: ...


log = logging.getLogger(__name__)


class Tab:
    """One tab's sketching: the newest words waiting, whether a sketch is being drawn, and its cancel."""

    def __init__(self):
        self.waiting: JobRequest | None = None
        self.cancel = threading.Event()
        self.idle = threading.Event()  # its drawing ended: nothing of it left in ComfyUI
        self.prompt_id: str | None = None


class Sketches:
    """Every tab's live sketches, for the pipeline that holds the drafts; ``busy`` says why nothing may be
    sent now (None: it may)."""

    def __init__(self, pipeline: Host, busy: Callable[[], str | None], workers: int = 2):
        self.pipeline = pipeline
        self.busy = busy
        self._tabs: dict[str, Tab] = {}  # session -> its sketching, until stopped
        self._drawing: dict[str, Tab] = {}  # session -> its sketching while it draws (stopped or not)
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sketch")

    def wanted(self, settings: Settings) -> bool:
        """Sketches for a tab with these settings: asked for, or ``auto`` and the model is fast enough."""
        if settings.drafts != "auto":
            return settings.drafts == "sketch"
        pipeline = self.pipeline
        seconds = pipeline.comfy.catalog.render_seconds(settings.checkpoint or pipeline.pictures.last_model())
        return seconds is not None and seconds < FAST_RENDER_S

    def update(self, request: JobRequest) -> bool:
        """The tab's committed words grew (``request.transcript``): they are drawn next. False when the tab
        gets no sketches (not wanted, nothing said, the server shutting down)."""
        settings = request.settings_on(self.pipeline.settings)
        if not self.pipeline.accepting or not (request.transcript or "").strip() or not self.wanted(settings):
            return False
        with self._lock:
            tab = self._tabs.setdefault(request.session, Tab())
            tab.waiting = request
            if self._drawing.get(request.session) is tab:
                return True  # drawn when the sketch under way is done
            tab.idle.clear()  # set again when this worker ends (a tab may be drawn by several in turn)
            self._drawing[request.session] = tab
        self._executor.submit(self._run, request.session, tab)
        return True

    def stop(self, session: str, wait_s: float = 0.0) -> None:
        """No more sketches for this tab until its next words (a pause, Stop, the end of the recording);
        the one under way is taken out of ComfyUI, waited for up to ``wait_s``."""
        with self._lock:
            tab = self._tabs.pop(session, None)
            drawing = self._drawing.get(session)
        if tab is not None:
            tab.waiting = None
            tab.cancel.set()
        if drawing is not None and wait_s:
            drawing.idle.wait(wait_s)

    def drawing(self) -> set[str]:
        """The tabs whose sketch is being written or drawn now."""
        with self._lock:
            return set(self._drawing)

    def prompt_ids(self) -> set[str]:
        """The ComfyUI prompts of the sketches under way (not orphans while they run)."""
        with self._lock:
            return {tab.prompt_id for tab in self._drawing.values() if tab.prompt_id}

    def shutdown(self) -> None:
        for session in list(self._tabs):
            self.stop(session)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, session: str, tab: Tab) -> None:
        """The tab's worker: the newest words waiting, one at a time, until none wait (decided under the lock
        ``update`` takes, so words that come as it ends start the next worker)."""
        while True:
            with self._lock:
                request, tab.waiting = tab.waiting, None
                if request is None or tab.cancel.is_set():
                    if self._drawing.get(session) is tab:
                        del self._drawing[session]
                    tab.idle.set()
                    return
            try:
                self._draw(session, tab, request)
            except Exception:  # never leaves the tab marked as drawing
                log.exception("sketch for %s failed", session)

    def _draw(self, session: str, tab: Tab, request: JobRequest) -> None:
        pipeline = self.pipeline
        busy = self.busy()
        if busy:
            log.debug("no sketch for %s: %s", session, busy)
            return
        settings = request.settings_on(pipeline.settings)
        log.debug("sketch for %s: %s", session, request.transcript)
        try:
            plan = pipeline.write_plan(request, settings, request.transcript, offline=True, on_turn=lambda turn: None)
            _, render = pipeline.pictures.prepare(request, plan, settings, pipeline.workflows.load(settings.workflow))
            rendered = pipeline.comfy.render(dataclasses.replace(render, sketch=True), lambda event: None,
                                             lambda submitted: setattr(tab, "prompt_id", submitted["prompt_id"]),
                                             cancel=tab.cancel)
        except RenderCancelled:
            return
        except Exception as exc:  # a sketch that fails says nothing to the tab: the draft and the job will
            log.info("sketch for %s failed: %s", session, getattr(exc, "message", exc))
            return
        finally:
            tab.prompt_id = None
        if tab.cancel.is_set():
            return  # the pause or Stop came meanwhile: the draft or the job is what the tab shows now
        used = rendered.used
        pipeline.hub.publish(session, {"type": "sketch", "url": jpeg_data_url(rendered.image),
                                       "words": request.transcript, "prompt": plan.prompt,
                                       "width": used.get("width"), "height": used.get("height"),
                                       "steps": used.get("steps")})
        pipeline.metrics.draft("sketched")


def jpeg_data_url(png: bytes, quality: int = 80) -> str:
    """A sketch as the page shows it: a JPEG data URL (a tenth of the PNG's size, over the tab's socket)."""
    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
