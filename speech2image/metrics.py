"""Prometheus metrics for operators: jobs by outcome, stage latencies, queue depth, ComfyUI up.

One registry per app (not the library's global one), so several apps in one
process (tests, benchmarks) never share counters.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

STAGES = ("asr", "prompt", "render", "speech", "save", "total")
DRAFT_EVENTS = ("started", "adopted", "cancelled", "sketched")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.jobs = Counter("speech2image_jobs_total", "Jobs that ended, by outcome.", ["outcome"],
                            registry=self.registry)
        self.stage_seconds = Histogram("speech2image_stage_seconds", "Time spent per stage of a job.", ["stage"],
                                       buckets=BUCKETS, registry=self.registry)
        self.in_flight = Gauge("speech2image_jobs_in_flight", "Jobs started and not yet ended (queue depth).",
                               registry=self.registry)
        self.comfyui_up = Gauge("speech2image_comfyui_up", "1 when the ComfyUI server answered the last check.",
                                ["url"], registry=self.registry)
        self.drafts = Counter("speech2image_drafts_total", "Drafts of live recordings (renders started at the "
                              "speaker's pause), by what became of them; sketched: live sketches shown.", ["event"], registry=self.registry)
        self.draft_wasted = Counter("speech2image_draft_wasted_render_seconds_total",
                                    "Render seconds spent on drafts that were thrown away.", registry=self.registry)
        for event in DRAFT_EVENTS:
            self.drafts.labels(event)
        for outcome in ("done", "prompt_ready", "error", "cancelled"):
            self.jobs.labels(outcome)
        for stage in STAGES:
            self.stage_seconds.labels(stage)

    def job_started(self) -> None:
        self.in_flight.inc()

    def job_ended(self, outcome: str, timings: dict) -> None:
        self.in_flight.dec()
        self.jobs.labels(outcome).inc()
        for stage, seconds in timings.items():
            if stage in STAGES:
                self.stage_seconds.labels(stage).observe(seconds)

    def draft(self, event: str, wasted_s: float = 0.0) -> None:
        self.drafts.labels(event).inc()
        if wasted_s > 0:
            self.draft_wasted.inc(wasted_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@contextmanager
def timed(timings: dict, name: str):
    """``timings[name]``: the seconds the block took, also when it raised (a failed stage took time too)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - started
