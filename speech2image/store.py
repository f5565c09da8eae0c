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
import uuid
from pathlib import Path

from PIL import Image, PngImagePlugin

from .errors import UserFacingError

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
THUMB_SIZE = (320, 320)
KINDS = {"png": "image/png", "thumb.jpg": "image/jpeg", "wav": "audio/wav"}


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
            tmp.unlink(missing_ok=True)
            raise StorageError(f"could not save the result in {self.root}: {exc.strerror or exc}") from exc

    def save_image(self, job_id: str, image_bytes: bytes, metadata: dict, graph: dict | None = None) -> dict:
        """PNG with text metadata (and the filled graph as 'prompt', so ComfyUI can load it) plus a thumbnail."""
        try:
            image = Image.open(io.BytesIO(image_bytes))
            image.load()
        except Exception as exc:
            raise StorageError(f"ComfyUI sent an image that could not be read: {exc}") from exc
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.items():
            if value is not None:
                info.add_itxt(key, value if isinstance(value, str) else json.dumps(value))
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
