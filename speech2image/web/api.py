"""JSON API under /api."""
from __future__ import annotations

import json
import logging
import queue
import threading

from flask import Blueprint, Response, current_app, jsonify, request

from ..errors import BadInput, UserFacingError
from ..prompt_writer import get_preset
from . import service

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("send a JSON object as the request body", code="bad_json")
    return body


def optional_text(body: dict, name: str, max_len: int = 200) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise BadInput(f"'{name}' must be text of at most {max_len} characters", code=f"bad_{name}")
    return value


@bp.get("/health")
def health():
    return jsonify({"whisper": service("transcriber").status(), "llm": service("llm").status()})


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


@bp.get("/llm")
def llm_info():
    """The LLM server in use and its models, for the page's model dropdown."""
    client = service("llm")
    server, models = client.discover(refresh=request.args.get("refresh") == "1")
    return jsonify({"server": server, "models": models, "model": client.model_setting or None,
                    "tried": list(client.candidates()), "off": client.off})


@bp.post("/prompt")
def prompt():
    """Transcript -> prompt plan. With ``Accept: text/event-stream`` the LLM's tokens stream as SSE."""
    body = json_body()
    transcript = body.get("transcript")
    if not isinstance(transcript, str) or not transcript.strip():
        raise BadInput("the transcript is empty: record or type a request first", code="empty_transcript")
    if len(transcript) > 4000:
        raise BadInput("the transcript is longer than 4000 characters", code="transcript_too_long")
    preset = optional_text(body, "preset") or current_app.config["SETTINGS"].llm_preset
    get_preset(preset)  # a bad preset is a 400 before any streaming starts
    kwargs = {
        "transcript": transcript,
        "preset": preset,
        "session": optional_text(body, "session"),
        "model": optional_text(body, "model"),
    }
    writer = service("prompt_writer")
    if "text/event-stream" in request.headers.get("Accept", "") or body.get("stream") is True:
        return stream_prompt(writer, kwargs)
    plan = writer.write(**kwargs)
    log.info("prompt written (%s) in %.2f s", plan.source, plan.elapsed_s)
    return jsonify(plan.to_dict())


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def stream_prompt(writer, kwargs) -> Response:
    """Relay the LLM's tokens as they come, then the finished plan (or the error)."""
    events: queue.Queue = queue.Queue()

    def work():
        try:
            plan = writer.write(**kwargs, on_token=lambda text: events.put(("token", {"text": text})))
            log.info("prompt written (%s) in %.2f s", plan.source, plan.elapsed_s)
            events.put(("result", plan.to_dict()))
        except UserFacingError as exc:
            events.put(("error", exc.to_dict()["error"]))
        except Exception:
            log.exception("prompt writing failed")
            events.put(("error", {"code": "internal_error", "message": "writing the prompt failed; see the server log"}))
        finally:
            events.put(None)

    threading.Thread(target=work, name="prompt-writer", daemon=True).start()

    def generate():
        while (item := events.get()) is not None:
            yield sse(*item)

    return Response(generate(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
