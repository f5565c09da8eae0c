"""The pipeline's durable side: each job's write-ahead row, recovery at start, shutdown.

Every job has a row (``store.JobHistory``) from the moment it is accepted, updated before each
stage's effect is visible; ``recover`` picks up the rows a previous run left: it follows or
collects a submitted render, or resumes from the last completed stage.
"""
from __future__ import annotations

import logging
import time

from .comfy import ComfyError
from .jobs import RECOVERED_NOTE, Job

log = logging.getLogger(__name__)


class Durability:
    """Mixed into ``Pipeline``: the methods that keep its jobs on disk and pick them up again."""


    def _accept(self, job: Job) -> None:
        """The job's row (and its recording) on disk before anyone hears of the job."""
        if self.history is None:
            return
        if job.request.audio is not None:
            self.store.keep_upload(job.id, job.request.audio)
        self.history.open_job(job.id, **job.write_ahead())

    def _journal(self, job: Job, synced: bool = True, **values) -> None:
        if self.history is not None and not job.finished:
            self.history.update_job(job.id, synced=synced, **values)

    def recover(self) -> list[Job]:
        """Pick up the jobs a previous run left in flight; they run in the background. Call once, at start."""
        if self.history is None:
            return []
        self.store.clean_partial()
        jobs = []
        for row in self.history.in_flight():
            try:
                job = Job.from_row(row, self.settings)
            except Exception:
                log.exception("job %s: its row could not be read; it is left in the database", row.get("id"))
                continue
            with self._lock:
                if job.id in self._jobs:
                    continue
                self._jobs[job.id] = job
            if RECOVERED_NOTE not in job.notes:
                job.notes.append(RECOVERED_NOTE)
            jobs.append(job)
            log.info("job %s: recovering from stage %s%s", job.id, job.stage,
                     f" (ComfyUI prompt {job.submitted['prompt_id']} at {job.submitted['server']})"
                     if job.submitted else "")
            self.metrics.job_started()
            self._executor.submit(self._run, job)
        return jobs

    def stop_accepting(self) -> None:
        self.accepting = False

    def wait_for_saves(self, timeout_s: float) -> bool:
        """Shutting down: wait while a job is saving its result or carrying out a cancel; True when none is."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                busy = [j for j in self._jobs.values() if not j.finished and
                        (j.stage == "saving" or j.cancel_event.is_set())]
            if not busy:
                return True
            time.sleep(0.05)
        return False

    def unfinished(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.finished]

    def orphans(self) -> dict[str, list[str]]:
        """Prompts in ComfyUI's queues that carry this instance's client id but belong to no job of ours."""
        return self.comfy.orphans(self._known_prompts)

    def _known_prompts(self) -> set[str]:
        known = self.history.in_flight_prompts() if self.history is not None else set()
        return known | {j.submitted["prompt_id"] for j in self.unfinished() if j.submitted}

    def _cancel_in_comfy(self, job: Job) -> None:
        """A cancel asked for before a restart, carried out on the prompt ComfyUI still has."""
        submitted = job.submitted
        client = self.comfy.client_for(submitted["server"])
        try:
            outcome = client.cancel(submitted["prompt_id"], wait_s=10.0)
            log.info("job %s: cancelled in ComfyUI after the restart (%s)", job.id, outcome)
        except ComfyError as exc:
            log.warning("job %s: could not cancel its ComfyUI prompt %s: %s", job.id, submitted["prompt_id"],
                        exc.message)
