"""JSON API under /api."""
from __future__ import annotations

import json
import logging
import queue
import threading

from flask import Blueprint, Response, jsonify, request

from ..comfy import ComfyError
from ..errors import BadInput, UserFacingError
from ..pipeline import JobRequest
from ..prompt_writer import get_preset
from ..runtime import EDITABLE, editable_view
from ..store import JOB_ID, new_job_id
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
    return jsonify({"whisper": service("transcriber").status(), "llm": service("llm").status(),
                    "comfyui": comfyui_status(), "tts": service("voices").get().status()})


def comfyui_status() -> dict:
    servers = service("pipeline").comfy_pool().status()
    ready = [srv for srv in servers if srv["state"] == "ready"]
    status = {"state": "ready" if ready else "unreachable", "url": ", ".join(srv["url"] for srv in servers),
              "servers": servers}
    if ready:
        status["version"] = ready[0].get("version")
    if len(ready) < len(servers):
        status["fix"] = ("start ComfyUI with --preview-method auto, or set SPEECH2IMAGE_COMFYUI_URL "
                         "(several servers: comma-separated)")
    return status


def audio_upload(required: bool) -> bytes | None:
    """The multipart field 'audio': None when absent and optional; an empty file is always refused."""
    upload = request.files.get("audio")
    if upload is None:
        if required:
            raise BadInput("no audio: send the recording as the multipart field 'audio'", code="missing_audio")
        return None
    data = upload.read()
    if not data:
        raise BadInput("the uploaded audio file is empty", code="empty_audio")
    return data


@bp.post("/transcribe")
def transcribe():
    transcript = service("transcriber").transcribe(audio_upload(required=True))
    log.info(
        "transcribed %.1f s of %s audio in %.2f s",
        transcript.duration_s,
        request.files["audio"].mimetype or "unknown",
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
    preset = optional_text(body, "preset") or service("runtime").settings.llm_preset
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


# --- jobs -------------------------------------------------------------------------

INT_FIELDS = {"seed": (-1, 2**53 - 1), "steps": (1, 200), "width": (64, 4096), "height": (64, 4096)}
TEXT_FIELDS = {"transcript": 4000, "prompt": 4000, "negative_prompt": 4000, "caption": 500, "preset": 40,
               "model": 200, "workflow": 120, "checkpoint": 300, "tts_engine": 20}


def job_request_from(values: dict, session: str, audio: bytes | None) -> JobRequest:
    """Validate the optional job fields; form values arrive as strings, JSON ones typed."""
    fields = {}
    for name, limit in TEXT_FIELDS.items():
        value = optional_text(values, name, limit)
        if value is not None:
            fields[name] = value
    for name, (low, high) in INT_FIELDS.items():
        value = values.get(name)
        if value in (None, ""):
            continue
        try:
            number = int(value)
            if isinstance(value, bool) or number != float(value) or not low <= number <= high:
                raise ValueError
        except (TypeError, ValueError):
            raise BadInput(f"'{name}' must be a whole number from {low} to {high}", code=f"bad_{name}")
        fields[name] = number
    if values.get("cfg") not in (None, ""):
        try:
            cfg = float(values["cfg"])
            if isinstance(values["cfg"], bool) or not 0 < cfg <= 30:
                raise ValueError
        except (TypeError, ValueError):
            raise BadInput("'cfg' must be a number above 0 and at most 30", code="bad_cfg")
        fields["cfg"] = cfg
    fields.setdefault("preset", service("runtime").settings.llm_preset)
    get_preset(fields["preset"])
    if "tts_engine" in fields:
        service("voices").get(fields["tts_engine"])  # a bad engine is a 400 now, not a failed job later
    return JobRequest(session=session, audio=audio, **fields)


def session_of(values: dict) -> str:
    session = values.get("session") or "anonymous"
    if not isinstance(session, str) or len(session) > 64:
        raise BadInput("'session' must be text of at most 64 characters", code="bad_session")
    return session


@bp.post("/jobs")
def start_job():
    """Start a whole job from a recording (multipart 'audio'), a transcript or a prompt."""
    if request.mimetype == "multipart/form-data":
        values = request.form.to_dict()
        audio = audio_upload(required=False)
    else:
        values, audio = json_body(), None
    job = service("pipeline").submit(job_request_from(values, session_of(values), audio))
    return jsonify(job.snapshot()), 202


def job_or_404(job_id: str):
    job = service("pipeline").get(job_id) if JOB_ID.match(job_id) else None
    if job is None:
        raise UserFacingError("there is no such job (the server may have restarted)", code="unknown_job", status=404)
    return job


@bp.get("/jobs/<job_id>")
def job_state(job_id):
    return jsonify(job_or_404(job_id).snapshot())


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id):
    job_or_404(job_id)
    return jsonify(service("pipeline").cancel(job_id).snapshot())


# --- ComfyUI choices --------------------------------------------------------------


@bp.get("/comfyui")
def comfyui_choices():
    """Workflows we have and checkpoints ComfyUI has, for the page's dropdowns."""
    pipeline = service("pipeline")
    answer = {"url": pipeline.defaults.comfyui_url, "workflows": service("workflows").names(),
              "workflow": pipeline.defaults.workflow, "checkpoint": pipeline.defaults.checkpoint or None,
              "checkpoints": [], "reachable": True}
    try:
        answer["checkpoints"] = pipeline.comfy().checkpoints()
    except ComfyError as exc:
        answer.update(reachable=False, error=exc.message)
    answer["choices"] = {"workflow": answer["workflows"], "checkpoint": answer["checkpoints"]}
    return jsonify(answer)


@bp.post("/workflows")
def upload_workflow():
    upload = request.files.get("workflow")
    if upload is None:
        raise BadInput("send the workflow file as the multipart field 'workflow'", code="missing_workflow")
    workflow = service("workflows").save_upload(upload.filename or "workflow.json", upload.read())
    log.info("workflow %s uploaded: roles %s", workflow.name, workflow.roles.describe())
    return jsonify({"name": workflow.name, "roles": workflow.roles.describe(), "defaults": workflow.defaults}), 201


@bp.post("/speak")
def speak():
    """Speak an (edited) caption again; answers the audio's URL."""
    body = json_body()
    text = body.get("text")
    if not isinstance(text, str):
        raise BadInput("send the caption as 'text'", code="empty_text")
    spoken = service("voices").get(optional_text(body, "engine", 20)).speak(text)
    if spoken is None:
        return jsonify({"audio_url": None, "engine": "off"})
    audio_id = new_job_id()
    service("store").save_audio(audio_id, spoken.wav)
    return jsonify({"audio_url": f"/outputs/{audio_id}.wav", "duration_s": round(spoken.duration_s, 2),
                    "elapsed_s": round(spoken.elapsed_s, 3), "engine": spoken.engine, "voice": spoken.voice,
                    "sample_rate": spoken.sample_rate})


# --- settings and gallery -----------------------------------------------------------


def settings_view(runtime) -> dict:
    return {"settings": editable_view(runtime.settings), "defaults": editable_view(runtime.base),
            "editable": list(EDITABLE)}


@bp.get("/settings")
def get_settings():
    return jsonify(settings_view(service("runtime")))


@bp.post("/settings")
def change_settings():
    """Partial update: only the fields sent change; they apply at once and persist."""
    runtime = service("runtime")
    runtime.update(json_body())
    return jsonify(settings_view(runtime))


@bp.get("/gallery")
def gallery():
    try:
        limit = min(200, max(1, int(request.args.get("limit", 60))))
        before = float(request.args["before"]) if request.args.get("before") else None
    except ValueError:
        raise BadInput("'limit' and 'before' must be numbers", code="bad_query")
    return jsonify({"entries": service("history").list(limit, before, only_images=request.args.get("all") != "1")})


def gallery_entry_or_404(job_id: str) -> dict:
    entry = service("history").get(job_id) if JOB_ID.match(job_id) else None
    if entry is None:
        raise UserFacingError("that picture is not in the gallery", code="unknown_entry", status=404)
    return entry


@bp.get("/gallery/<job_id>")
def gallery_entry(job_id):
    return jsonify(gallery_entry_or_404(job_id))


@bp.delete("/gallery/<job_id>")
def delete_gallery_entry(job_id):
    gallery_entry_or_404(job_id)
    service("history").delete(job_id)
    service("store").delete(job_id)
    log.info("gallery entry %s deleted", job_id)
    return jsonify({"deleted": job_id})
