"""Jobs: what carries one request through the stages, and keeps it.

``job`` is one request and its state, and the per-session fan-out of its events; ``pipeline`` runs a
job through the stages (speech, prompt, picture, voice) in a background worker; ``journal`` keeps each
job's write-ahead row and picks up what a previous run left; ``edits`` decides which picture a job
changes; ``store`` keeps the results on disk and the history in SQLite.
"""
from .job import (
           ACTIVE_STAGES,
           EVENTS,
           FINISHED_STAGES,
           STAGES,
           EventHub,
           Job,
           JobCancelled,
           JobRequest,
           Stage,
           page_table,
)
from .pipeline import Pipeline
from .store import JOB_ID, KINDS, JobHistory, OutputStore, StorageError, new_job_id

__all__ = ["ACTIVE_STAGES", "EVENTS", "FINISHED_STAGES", "JOB_ID", "STAGES", "Stage", "page_table", "KINDS", "EventHub", "Job", "JobCancelled", "JobHistory", "JobRequest",
           "OutputStore", "Pipeline", "StorageError", "new_job_id"]
