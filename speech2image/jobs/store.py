"""Results on disk and jobs in SQLite: PNGs with their story in text chunks, thumbnails,
kept recordings, the history of finished jobs and the write-ahead rows of jobs in flight.

Files are named only by job id (a UUID we made), so no path from a request ever
reaches the filesystem. Writes go to a temporary name first: a half-written file
is never reported as done. A full disk says so in those words.
"""
from __future__ import annotations

import builtins
import errno
import io
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path

from PIL import Image, PngImagePlugin

from ..errors import UserFacingError

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
THUMB_SIZE = (320, 320)
KINDS = {"png": "image/png", "thumb.jpg": "image/jpeg", "wav": "audio/wav"}
METADATA_PREFIX = "speech2image:"


class StorageError(UserFacingError):
    status = 507
    code = "storage_failed"


def new_job_id() -> str:
    return uuid.uuid4().hex


def storage_error(what: str, exc: BaseException) -> StorageError:
    """The words for a failed write; a full disk (or a file-size limit) is named as such."""
    number = getattr(exc, "errno", None)
    text = str(exc)
    if number in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or "disk is full" in text:
        return StorageError(f"disk full: {what}; free some space and run the job again")
    return StorageError(f"{what}: {getattr(exc, 'strerror', None) or exc}")


class OutputStore:
    def __init__(self, root: Path, uploads: Path | None = None):
        self.root = Path(root)
        # Recordings of jobs in flight, kept until their transcript is stored; never served.
        self.uploads = Path(uploads) if uploads is not None else self.root.parent / "uploads"

    def path(self, job_id: str, kind: str) -> Path:
        if not JOB_ID.match(job_id or "") or kind not in KINDS:
            raise FileNotFoundError(job_id)
        return self.root / f"{job_id}.{kind}"

    def _write(self, target: Path, data: bytes) -> None:
        tmp = target.with_name(target.name + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # the folder itself is the problem; there is nothing to clean
            raise storage_error(f"could not save the result in {target.parent}", exc) from exc

    def save_image(self, job_id: str, image_bytes: bytes, story: dict, graph: dict | None = None) -> dict:
        """PNG plus a thumbnail. ``story`` (transcript, prompt, seed, sampler...) goes into text chunks
        named ``speech2image:<key>``; the filled graph goes in as 'prompt', so ComfyUI can load it."""
        try:
            image = Image.open(io.BytesIO(image_bytes))
            image.load()
        except Exception as exc:
            raise StorageError(f"ComfyUI sent an image that could not be read: {exc}") from exc
        info = PngImagePlugin.PngInfo()
        # The picture's own size when the graph did not set one (a change keeps its parent's size).
        story = {**story, "width": story.get("width") or image.width, "height": story.get("height") or image.height}
        for key, value in story.items():
            if value is not None:
                info.add_itxt(f"{METADATA_PREFIX}{key}", value if isinstance(value, str) else json.dumps(value))
        if graph is not None:
            info.add_text("prompt", json.dumps(graph))
        png = io.BytesIO()
        image.save(png, "PNG", pnginfo=info)
        thumb = image.convert("RGB")
        thumb.thumbnail(THUMB_SIZE)
        jpg = io.BytesIO()
        thumb.save(jpg, "JPEG", quality=85)
        self._write(self.path(job_id, "png"), png.getvalue())
        self._write(self.path(job_id, "thumb.jpg"), jpg.getvalue())
        return {"width": image.width, "height": image.height}

    def image(self, job_id: str) -> bytes | None:
        """A finished picture's PNG, to change it; None when its file is gone."""
        try:
            return self.path(job_id, "png").read_bytes()
        except OSError:
            return None

    def save_audio(self, job_id: str, wav: bytes) -> None:
        self._write(self.path(job_id, "wav"), wav)

    def delete(self, job_id: str) -> None:
        for kind in KINDS:
            self.path(job_id, kind).unlink(missing_ok=True)

    def clean_partial(self) -> None:
        """Temporary files a crash left half-written: never results, so they go."""
        for folder in (self.root, self.uploads):
            for part in folder.glob("*.part") if folder.is_dir() else ():
                part.unlink(missing_ok=True)

    # --- recordings of jobs in flight --------------------------------------------------

    def _upload_path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id or ""):
            raise FileNotFoundError(job_id)
        return self.uploads / f"{job_id}.audio"

    def keep_upload(self, job_id: str, audio: bytes) -> None:
        """The recording stays on disk until its transcript is stored: a restart can transcribe it again."""
        self._write(self._upload_path(job_id), audio)

    def upload(self, job_id: str) -> bytes | None:
        try:
            return self._upload_path(job_id).read_bytes()
        except OSError:
            return None

    def drop_upload(self, job_id: str) -> None:
        try:
            self._upload_path(job_id).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the recording of job %s: %s", job_id, exc)


# The database's schema, one step per version; PRAGMA user_version says how many steps a file has.
# Version 1 is the history table as the first releases wrote it (they set no version), so their
# files are upgraded in place and keep every entry.
MIGRATIONS = (
    ("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, session TEXT, created REAL, finished REAL,"
     " stage TEXT, transcript TEXT, prompt TEXT, negative_prompt TEXT, caption TEXT, prompt_source TEXT,"
     " render TEXT, image_url TEXT, thumb_url TEXT, audio_url TEXT, timings TEXT, notes TEXT, error TEXT)",
     "CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created DESC)"),
    # 2: write-ahead rows of jobs in flight, and this instance's id (its ComfyUI client ids carry it).
    ("CREATE TABLE IF NOT EXISTS in_flight (id TEXT PRIMARY KEY, session TEXT NOT NULL, created REAL NOT NULL,"
     " updated REAL NOT NULL, stage TEXT NOT NULL, request TEXT NOT NULL, settings TEXT NOT NULL,"
     " transcript TEXT, plan TEXT, render TEXT, server TEXT, client_id TEXT, prompt_id TEXT, graph TEXT,"
     " cancel_requested INTEGER NOT NULL DEFAULT 0, timings TEXT, notes TEXT)",
     "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"),
    # 3: how a job was decided (new picture or a change of another, with its strength): the gallery's chains.
    ("ALTER TABLE jobs ADD COLUMN decision TEXT",),
    # 4: the language the person spoke: the caption's voice when a picture is run again.
    ("ALTER TABLE jobs ADD COLUMN language TEXT",),
    # 5: what became of a live recording's draft (adopted, how long it ran before Stop, render seconds wasted).
    ("ALTER TABLE jobs ADD COLUMN draft TEXT",),
)
SCHEMA_VERSION = len(MIGRATIONS)


class JobHistory:
    """Every job in SQLite in the instance folder: the finished ones (the gallery, which survives
    restarts) and, from the moment a job is accepted, its write-ahead row in ``in_flight``,
    updated before each stage's effect is visible. Finishing moves a job from one table to the
    other in one transaction. WAL mode: readers never wait for the writer, a crash loses nothing
    committed. Writes go through one connection kept open (closing the last one checkpoints the
    WAL, an fsync each time); rows recovery depends on are synced to the disk at commit
    (synchronous=FULL, survives a power cut), a stage's label alone is not (NORMAL: it survives
    the process dying, and after a power cut recovery starts from the row before it)."""

    COLUMNS = ("id", "session", "created", "finished", "stage", "transcript", "prompt", "negative_prompt",
               "caption", "prompt_source", "render", "image_url", "thumb_url", "audio_url", "timings", "notes",
               "error", "decision", "language", "draft")
    JSON_COLUMNS = ("render", "timings", "notes", "error", "decision", "draft")
    IN_FLIGHT_COLUMNS = ("session", "created", "stage", "request", "settings", "transcript", "plan", "render",
                         "server", "client_id", "prompt_id", "graph", "cancel_requested", "timings", "notes")
    IN_FLIGHT_JSON = ("request", "settings", "plan", "render", "graph", "timings", "notes")

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
        self.migrate()
        self.instance_id = self._instance_id()
        self._writer = self._connect(check_same_thread=False)
        self._writer_lock = threading.Lock()

    def _connect(self, **kwargs):
        db = sqlite3.connect(self.path, timeout=10, **kwargs)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        return db

    def migrate(self) -> None:
        db = self._connect()
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(f"{self.path} was written by a newer speech2image (schema {version}, this "
                                   f"one knows {SCHEMA_VERSION}); update speech2image or use another data folder")
            for number in range(version, SCHEMA_VERSION):
                with db:  # each step and its version number in one transaction
                    for statement in MIGRATIONS[number]:
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {number + 1}")
        finally:
            db.close()

    def schema_version(self) -> int:
        with closing(self._connect()) as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    def _instance_id(self) -> str:
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?)", (uuid.uuid4().hex[:12],))
            return db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()[0]

    def _write(self, statements: list[tuple[str, tuple]], synced: bool = True) -> None:
        try:
            with self._writer_lock:
                db = self._writer
                db.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
                with db:
                    for sql, args in statements:
                        db.execute(sql, args)
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(f"could not record the job in {self.path}", exc) from exc

    # --- jobs in flight -------------------------------------------------------------

    def open_job(self, job_id: str, **values) -> None:
        """The write-ahead row of a job just accepted (before anyone hears of it)."""
        values.setdefault("created", time.time())
        names = ["id", "updated", *values]
        row = [job_id, time.time(), *(self._encode(n, v) for n, v in values.items())]
        self._write([(f"INSERT INTO in_flight ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                      tuple(row))])

    def update_job(self, job_id: str, synced: bool = True, **values) -> None:
        """``synced=False`` for what recovery can do without after a power cut (a stage's label)."""
        unknown = set(values) - set(self.IN_FLIGHT_COLUMNS)
        if unknown:
            raise ValueError(f"not columns of in_flight: {unknown}")
        names = ["updated", *values]
        args = [time.time(), *(self._encode(n, v) for n, v in values.items()), job_id]
        self._write([(f"UPDATE in_flight SET {', '.join(n + ' = ?' for n in names)} WHERE id = ?", tuple(args))],
                    synced)

    def in_flight(self) -> list[dict]:
        """The jobs a previous run left unfinished, oldest first."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM in_flight ORDER BY created").fetchall()
        result = []
        for row in rows:
            entry = dict(row)
            for name in self.IN_FLIGHT_JSON:
                entry[name] = json.loads(entry[name]) if entry[name] else None
            result.append(entry)
        return result

    def in_flight_prompts(self) -> set[str]:
        with closing(self._connect()) as db:
            return {r[0] for r in db.execute("SELECT prompt_id FROM in_flight WHERE prompt_id IS NOT NULL")}

    def _encode(self, name: str, value):
        return json.dumps(value) if name in self.IN_FLIGHT_JSON and value is not None else value

    # --- finished jobs ----------------------------------------------------------------

    def record(self, snapshot: dict, session: str, finished: float) -> None:
        """Into the history, and out of the jobs in flight, in one transaction."""
        row = {name: snapshot.get(name) for name in self.COLUMNS}
        row.update(id=snapshot["job_id"], session=session, finished=finished)
        for name in self.JSON_COLUMNS:
            row[name] = json.dumps(row[name])
        self._write([
            (f"INSERT OR REPLACE INTO jobs ({', '.join(self.COLUMNS)}) "
             f"VALUES ({', '.join('?' for _ in self.COLUMNS)})", tuple(row[c] for c in self.COLUMNS)),
            ("DELETE FROM in_flight WHERE id = ?", (row["id"],)),
        ])

    def _entry(self, row) -> dict:
        entry = dict(row)
        for name in self.JSON_COLUMNS:
            entry[name] = json.loads(entry[name]) if entry[name] else None
        entry["job_id"] = entry.pop("id")
        entry.pop("session", None)
        decision = entry.get("decision")
        entry["edit_of"] = decision["parent"] if decision and decision.get("mode") == "edit" else None
        return entry

    def list(self, limit: int = 50, before: float | None = None, only_images: bool = False) -> list[dict]:
        query = "SELECT * FROM jobs WHERE created < ?"
        if only_images:
            query += " AND image_url IS NOT NULL"
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY created DESC LIMIT ?",
                              (before if before is not None else 1e18, limit)).fetchall()
        return [self._entry(r) for r in rows]

    def get(self, job_id: str) -> dict | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._entry(row) if row else None

    def last_picture(self, session: str) -> str | None:
        """The newest picture a browser tab made: what a follow-up such as "make it at night" changes."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT id FROM jobs WHERE session = ? AND image_url IS NOT NULL "
                             "ORDER BY finished DESC LIMIT 1", (session,)).fetchone()
        return row[0] if row else None

    def chain(self, job_id: str, limit: int = 50) -> builtins.list[dict]:  # here, list is the method above
        """The pictures a picture was changed from, its parent first; a deleted one ends the chain there
        (its id is kept, with ``missing``)."""
        chain: builtins.list[dict] = []
        seen = {job_id}
        entry = self.get(job_id)
        while entry and entry["edit_of"] and len(chain) < limit:
            parent_id = entry["edit_of"]
            if parent_id in seen:
                break
            seen.add(parent_id)
            entry = self.get(parent_id)
            strength = (entry or {}).get("decision") or {}
            chain.append({"job_id": parent_id, "missing": True} if entry is None else {
                "job_id": parent_id, "thumb_url": entry["thumb_url"], "image_url": entry["image_url"],
                "prompt": entry["prompt"], "edit_of": entry["edit_of"], "strength": strength.get("strength")})
        return chain

    def delete(self, job_id: str) -> bool:
        with closing(self._connect()) as db, db:
            return db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0
