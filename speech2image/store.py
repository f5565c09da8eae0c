"""Finished results on disk: PNGs with their story in text chunks, and thumbnails.

Files are named only by job id (a UUID we made), so no path from a request ever
reaches the filesystem. Writes go to a temporary name first: a half-written file
is never reported as done.
"""
from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import uuid
from pathlib import Path

from PIL import Image, PngImagePlugin

from .errors import UserFacingError

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
THUMB_SIZE = (320, 320)
KINDS = {"png": "image/png", "thumb.jpg": "image/jpeg", "wav": "audio/wav"}
METADATA_PREFIX = "speech2image:"


class StorageError(UserFacingError):
    status = 507
    code = "storage_failed"


def new_job_id() -> str:
    return uuid.uuid4().hex


class OutputStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, job_id: str, kind: str) -> Path:
        if not JOB_ID.match(job_id or "") or kind not in KINDS:
            raise FileNotFoundError(job_id)
        return self.root / f"{job_id}.{kind}"

    def _write(self, target: Path, data: bytes) -> None:
        tmp = target.with_name(target.name + ".part")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
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
            raise StorageError(f"could not save the result in {self.root}: {exc.strerror or exc}") from exc

    def save_image(self, job_id: str, image_bytes: bytes, story: dict, graph: dict | None = None) -> dict:
        """PNG plus a thumbnail. ``story`` (transcript, prompt, seed, sampler...) goes into text chunks
        named ``speech2image:<key>``; the filled graph goes in as 'prompt', so ComfyUI can load it."""
        try:
            image = Image.open(io.BytesIO(image_bytes))
            image.load()
        except Exception as exc:
            raise StorageError(f"ComfyUI sent an image that could not be read: {exc}") from exc
        info = PngImagePlugin.PngInfo()
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

    def save_audio(self, job_id: str, wav: bytes) -> None:
        self._write(self.path(job_id, "wav"), wav)

    def delete(self, job_id: str) -> None:
        for kind in KINDS:
            self.path(job_id, kind).unlink(missing_ok=True)


class JobHistory:
    """Every finished job, in SQLite in the instance folder, so the gallery survives restarts."""

    COLUMNS = ("id", "session", "created", "finished", "stage", "transcript", "prompt", "negative_prompt",
               "caption", "prompt_source", "render", "image_url", "thumb_url", "audio_url", "timings", "notes",
               "error")
    JSON_COLUMNS = ("render", "timings", "notes", "error")

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, session TEXT, created REAL, finished REAL,"
                " stage TEXT, transcript TEXT, prompt TEXT, negative_prompt TEXT, caption TEXT, prompt_source TEXT,"
                " render TEXT, image_url TEXT, thumb_url TEXT, audio_url TEXT, timings TEXT, notes TEXT, error TEXT)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created DESC)")

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def record(self, snapshot: dict, session: str, finished: float) -> None:
        row = {name: snapshot.get(name) for name in self.COLUMNS}
        row.update(id=snapshot["job_id"], session=session, finished=finished)
        for name in self.JSON_COLUMNS:
            row[name] = json.dumps(row[name])
        try:
            with self._connect() as db:
                db.execute(f"INSERT OR REPLACE INTO jobs ({', '.join(self.COLUMNS)}) "
                           f"VALUES ({', '.join('?' for _ in self.COLUMNS)})", [row[c] for c in self.COLUMNS])
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"could not record the job in {self.path}: {exc}") from exc

    def _entry(self, row) -> dict:
        entry = dict(row)
        for name in self.JSON_COLUMNS:
            entry[name] = json.loads(entry[name]) if entry[name] else None
        entry["job_id"] = entry.pop("id")
        entry.pop("session", None)
        return entry

    def list(self, limit: int = 50, before: float | None = None, only_images: bool = False) -> list[dict]:
        query = "SELECT * FROM jobs WHERE created < ?"
        if only_images:
            query += " AND image_url IS NOT NULL"
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created DESC LIMIT ?",
                              (before if before is not None else 1e18, limit)).fetchall()
        return [self._entry(r) for r in rows]

    def get(self, job_id: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._entry(row) if row else None

    def delete(self, job_id: str) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0
