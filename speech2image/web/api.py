"""JSON API under /api."""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from ..errors import BadInput
from . import service

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/health")
def health():
    return jsonify({"whisper": service("transcriber").status()})


@bp.post("/transcribe")
def transcribe():
    upload = request.files.get("audio")
    if upload is None:
        raise BadInput("no audio: send the recording as the multipart field 'audio'", code="missing_audio")
    data = upload.read()
    if not data:
        raise BadInput("the uploaded audio file is empty", code="empty_audio")
    transcript = service("transcriber").transcribe(data)
    log.info(
        "transcribed %.1f s of %s audio in %.2f s",
        transcript.duration_s,
        upload.mimetype or "unknown",
        transcript.elapsed_s,
    )
    log.debug("transcript: %s", transcript.text)
    return jsonify(transcript.to_dict())
