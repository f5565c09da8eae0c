"""Durable jobs: the database of the first releases is upgraded in place; a full disk fails a job
in those words and leaves the database consistent."""
from __future__ import annotations

import os
import sqlite3

import pytest
import requests

from speech2image.store import SCHEMA_VERSION, JobHistory

from .support.live import LiveServer
from .support.relay import Relay, finished

SESSION = "durable-test-session"

# The history table exactly as the first releases created it (no schema version, no WAL).
FIRST_RELEASE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, session TEXT, created REAL, finished REAL,"
    " stage TEXT, transcript TEXT, prompt TEXT, negative_prompt TEXT, caption TEXT, prompt_source TEXT,"
    " render TEXT, image_url TEXT, thumb_url TEXT, audio_url TEXT, timings TEXT, notes TEXT, error TEXT)"
)


# --- in one process ---------------------------------------------------------------------------------


def test_database_of_the_first_release_is_upgraded_and_keeps_its_history(tmp_path):
    path = tmp_path / "speech2image.db"
    db = sqlite3.connect(path)
    db.execute(FIRST_RELEASE_SCHEMA)
    db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created DESC)")
    db.execute("INSERT INTO jobs VALUES ('0123456789abcdef0123456789abcdef', 's', 1.0, 2.0, 'done', 'a cat', "
               "'a cat, oil', '', 'A cat.', 'offline', '{\"seed\": 5}', '/outputs/x.png', '/outputs/x.thumb.jpg',"
               " NULL, '{\"total\": 1.0}', '[]', 'null')")
    db.commit()
    db.close()
    history = JobHistory(path)
    assert history.schema_version() == SCHEMA_VERSION == 2
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    [old] = history.list()
    assert old["job_id"] == "0123456789abcdef0123456789abcdef" and old["render"] == {"seed": 5}
    history.open_job("f" * 32, session="s", stage="pending", request={"prompt": "x"}, settings={})
    assert [row["id"] for row in history.in_flight()] == ["f" * 32]
    history.record({"job_id": "f" * 32, "stage": "done", "created": 3.0}, "s", 4.0)
    assert history.in_flight() == [] and len(history.list()) == 2
    assert JobHistory(path).instance_id == history.instance_id  # opened again: nothing re-run, same id


def test_database_from_a_newer_version_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "speech2image.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(Exception, match="newer speech2image"):
        JobHistory(path)


def test_disk_full_fails_the_job_in_those_words_and_keeps_the_database_consistent(make_app, comfy, tmp_path):
    """/dev/full answers every write with ENOSPC, as a full disk does: the PNG's temporary file is a link to it."""
    comfy.knobs.step_delay_s = 0.2
    with LiveServer(make_app(comfyui_url=comfy.url, steps=10)) as server:
        relay = Relay(server)
        job_id = requests.post(server.url + "/api/jobs", json={"prompt": "a full disk", "session": relay.session},
                               timeout=10).json()["job_id"]
        outputs = tmp_path / "instance" / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        os.symlink("/dev/full", outputs / f"{job_id}.png.part")
        state = relay.until(finished)[-1]["snapshot"]
        relay.close()
        history = server.app.extensions["speech2image"].history
        assert state["stage"] == "error" and state["error"]["code"] == "storage_failed"
        assert state["error"]["message"].startswith("disk full")
        assert not (outputs / f"{job_id}.png").exists() and not (outputs / f"{job_id}.png.part").exists()
        assert history.get(job_id)["stage"] == "error" and history.in_flight() == []
