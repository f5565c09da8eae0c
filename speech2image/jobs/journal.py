"""Each job's write-ahead row: written before each stage's effect is visible, read back after a restart.

Every job has a row (``store.JobHistory``) from the moment it is accepted (and its recording is on disk);
the pipeline writes each stage to it before anyone hears of that stage, and the ComfyUI prompt before it
is posted. After a restart ``in_flight`` turns the rows a previous run left into jobs again, which the
pipeline runs from where they stopped. Without a history (tests, a store-less pipeline) nothing is kept.
"""
from __future__ import annotations

import logging
import time

from ..errors import UserFacingError
from .job import RECOVERED_NOTE, Job
from .store import JobHistory, OutputStore

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, history: JobHistory | None, store: OutputStore):
        self.history = history
        self.store = store

    @property
    def instance_id(self) -> str | None:
        """This data folder's own id: our ComfyUI client ids carry it, so our prompts can be told from others'."""
        return self.history.instance_id if self.history is not None else None

    def accept(self, job: Job) -> None:
        """The job's row (and its recording) on disk before anyone hears of the job."""
        if self.history is None:
            return
        if job.request.audio is not None:
            self.store.keep_upload(job.id, job.request.audio)
        self.history.open_job(job.id, **job.write_ahead())

    def write(self, job: Job, synced: bool = True, **values) -> None:
        """What a stage did, before it is visible; ``synced`` False for a stage change recovery can do without."""
        if self.history is not None and not job.finished:
            self.history.update_job(job.id, synced=synced, **values)

    def try_write(self, job: Job, **values) -> None:
        """A write whose failure must not stop what follows (a cancel is carried out even when unrecorded)."""
        try:
            self.write(job, **values)
        except UserFacingError as exc:
            log.error("job %s: %s was not recorded: %s", job.id, ", ".join(values), exc.message)

    def keep(self, job: Job) -> None:
        """A finished job into the gallery's history; one that cannot be recorded says so instead of vanishing."""
        if self.history is None:
            return
        try:
            self.history.record(job.snapshot(), job.session, time.time())
        except UserFacingError as exc:
            log.error("job %s not kept in history: %s", job.id, exc.message)

    def in_flight(self, settings) -> list[Job]:
        """The jobs a previous run left in flight, as their rows describe them (partial files cleaned first)."""
        if self.history is None:
            return []
        self.store.clean_partial()
        jobs = []
        for row in self.history.in_flight():
            try:
                job = Job.from_row(row, settings)
            except Exception:
                log.exception("job %s: its row could not be read; it is left in the database", row.get("id"))
                continue
            if RECOVERED_NOTE not in job.notes:
                job.notes.append(RECOVERED_NOTE)
            jobs.append(job)
        return jobs

    def known_prompts(self) -> set[str]:
        """The ComfyUI prompt ids that rows in flight own."""
        return self.history.in_flight_prompts() if self.history is not None else set()
