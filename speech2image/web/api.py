"""JSON API under /api."""
from __future__ import annotations

import dataclasses
import json
import logging
import queue
import re
import threading
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..config import KNOBS
from ..errors import BadInput, UserFacingError, error_body
from ..jobs import JOB_ID, JobRequest, new_job_id
from ..picture import FAMILIES, MISS_HINT, VARIANTS, ComfyError, WorkflowError
from ..speech import fixed
from .context import current_runtime

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
    runtime = current_runtime()
    return jsonify({"whisper": runtime.transcriber.status(), "llm": runtime.llm.status(),
                    "comfyui": comfyui_status(), "tts": runtime.voices.get().status(), "jobs": jobs_status()})


def jobs_status() -> dict:
    """Jobs in flight, and prompts of ours in ComfyUI's queues that no job follows (orphans)."""
    pipeline = current_runtime().pipeline
    orphans = pipeline.orphans()
    status = {"in_flight": len(pipeline.unfinished()), "accepting": pipeline.accepting, "orphans": orphans}
    if orphans:
        status["fix"] = ("ComfyUI has prompts this app submitted but no job follows; cancel them in ComfyUI's "
                         "queue if nobody needs them")
    return status


def comfyui_status() -> dict:
    """The ComfyUI light: ready, starting (ours, coming up) or unreachable; how its address was found
    (configured, discovered, started) and its device (cpu or gpu)."""
    servers = current_runtime().comfy.status()
    ready = [srv for srv in servers if srv["state"] == "ready"]
    starting = any(srv["state"] == "starting" for srv in servers)
    status = {"state": "ready" if ready else "starting" if starting else "unreachable",
              "url": ", ".join(srv["url"] for srv in servers), "servers": servers}
    if ready:
        status.update(version=ready[0].get("version"), how=ready[0].get("how"), device=ready[0].get("device"))
    if len(ready) < len(servers) and not starting:
        hows = {srv.get("how") for srv in servers if srv["state"] != "ready"}
        if "started" in hows:
            status["fix"] = ("fix what the ComfyUI log says, or change the ComfyUI folder or its Python in Settings "
                             "(SPEECH2IMAGE_COMFYUI_DIR, SPEECH2IMAGE_COMFYUI_PYTHON)")
        elif "discovery" in hows:
            status["fix"] = MISS_HINT
        else:  # an address the person set: check that one
            status["fix"] = ("check that ComfyUI runs at the address set in Settings or SPEECH2IMAGE_COMFYUI_URL "
                             "and listens on that port (started with --preview-method auto), or change the address "
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


def language_of(values: dict) -> str | None:
    """The optional 'language' of a request (a Whisper code or 'auto'), refused with the list when unknown."""
    value = values.get("language")
    return None if value in (None, "") else current_runtime().check(KNOBS["language"], value, "job")


@bp.post("/transcribe")
def transcribe():
    """A recording's words in the language spoken, that language and Whisper's probability for it
    (``translate=1``: also its English translation)."""
    runtime = current_runtime()
    transcript = runtime.transcriber.transcribe(audio_upload(required=True), language=language_of(request.form),
                                                translate=request.form.get("translate") in ("1", "true"))
    log.info(
        "transcribed %.1f s of %s audio in %.2f s (%s, p=%s)",
        transcript.duration_s,
        request.files["audio"].mimetype or "unknown",
        transcript.elapsed_s,
        transcript.language,
        transcript.language_probability,
    )
    log.debug("transcript: %s", transcript.text)
    return jsonify(transcript.to_dict())


@bp.get("/llm")
def llm_info():
    """The LLM server in use and its models, for the page's model dropdown."""
    client = current_runtime().llm
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
    runtime = current_runtime()
    # A bad preset is a 400 before any streaming starts.
    chosen = dataclasses.replace(runtime.settings, **runtime.job_overrides(
        {name: body.get(name) for name in ("preset", "model", "checkpoint", "cfg")}))
    kwargs = {
        "transcript": transcript,
        "preset": chosen.llm_preset,
        "session": optional_text(body, "session"),
        "model": chosen.llm_model or None,
        "dialect": runtime.comfy.dialect(runtime.workflows, chosen),  # what the picture's model understands
        "language": fixed(language_of(body)),
        "translation": optional_text(body, "translation", 4000),
    }
    writer = runtime.prompt_writer
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
            events.put(("error", error_body("internal_error", "writing the prompt failed; see the server log")["error"]))
        finally:
            events.put(None)

    threading.Thread(target=work, name="prompt-writer", daemon=True).start()

    def generate():
        while (item := events.get()) is not None:
            yield sse(*item)

    return Response(generate(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# --- jobs -------------------------------------------------------------------------

# The texts of a job; the settings it may override are config.JOB_KNOBS.
# request_id: the page's id for one request, so that sending it twice starts one job.
REQUEST_ID = re.compile(r"^[\w-]{8,64}$")
TEXT_FIELDS = {"transcript": 4000, "prompt": 4000, "negative_prompt": 4000, "caption": 500}


def job_request_from(values: dict, session: str, audio: bytes | None) -> JobRequest:
    """Validate the optional job fields; form values arrive as strings, JSON ones typed."""
    texts: dict[str, Any] = {name: optional_text(values, name, limit) for name, limit in TEXT_FIELDS.items()}
    overrides = current_runtime().job_overrides(values)
    # edit_of: the job whose picture to change; mode: new, edit (the tab's last picture) or auto (the wording decides)
    request_id = optional_text(values, "request_id", 64)
    if request_id and not REQUEST_ID.match(request_id):
        raise BadInput("'request_id' must be letters, digits, '-' or '_' (8 to 64)", code="bad_request_id")
    return JobRequest(session=session, audio=audio, overrides=overrides, edit_of=optional_text(values, "edit_of", 64),
                      mode=optional_text(values, "mode", 10) or "auto", request_id=request_id, **texts)


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
    job = current_runtime().pipeline.submit(job_request_from(values, session_of(values), audio))
    return jsonify(job.snapshot()), 202


def job_or_404(job_id: str):
    job = current_runtime().pipeline.get(job_id) if JOB_ID.match(job_id) else None
    if job is None:
        raise UserFacingError("there is no such job (the server may have restarted)", code="unknown_job", status=404)
    return job


@bp.get("/jobs/<job_id>")
def job_state(job_id):
    """A job in memory, or one that finished in an earlier run (or while the page was away)."""
    runtime = current_runtime()
    job = runtime.pipeline.get(job_id) if JOB_ID.match(job_id) else None
    entry = runtime.history.get(job_id) if job is None and JOB_ID.match(job_id) else None
    if entry is not None:
        return jsonify(entry)
    return jsonify(job_or_404(job_id).snapshot())


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id):
    job_or_404(job_id)
    return jsonify(current_runtime().pipeline.cancel(job_id).snapshot())


# --- ComfyUI choices --------------------------------------------------------------


@bp.get("/comfyui")
def comfyui_choices():
    """Workflows we have, and what ComfyUI offers for each setting whose choices come from it
    (checkpoints, samplers), for the page's dropdowns: ``choices`` is keyed by the setting.
    ``workflow_defaults`` holds each workflow's own values (steps, cfg, size, seed, sampler,
    checkpoint), what a job gets for a setting left at its 'keep' value."""
    runtime = current_runtime()
    settings = runtime.settings
    choices = {"workflow": runtime.workflows.names()}
    answer = {"url": settings.comfyui_url, "workflows": choices["workflow"], "workflow": settings.workflow,
              "checkpoint": settings.checkpoint or None, "reachable": True, "choices": choices,
              "workflow_defaults": workflow_defaults(runtime.workflows, choices["workflow"])}
    client = runtime.comfy.first
    for knob in KNOBS.values():
        if knob.choices in client.CHOICE_SOURCES:
            try:
                choices[knob.name] = client.choices(knob.choices)
            except ComfyError as exc:
                choices[knob.name] = []
                if exc.code == "comfyui_unreachable":
                    answer.update(reachable=False, error=exc.message)
                    break  # the next question would wait as long for the same silence
                log.info("ComfyUI offers no %s: %s", knob.choices, exc.message)
    catalog, models = runtime.catalog, []
    if answer["reachable"]:
        try:  # every model folder, each file with its family and recipe; the LoRAs with theirs
            models = [m.describe() for m in catalog.models(client)]
            choices["loras"] = [m.name for m in catalog.loras(client)]
        except ComfyError as exc:
            log.info("ComfyUI's models could not be listed: %s", exc.message)
        choices["checkpoint"] = [m["name"] for m in models] or choices.get("checkpoint", [])
    answer["checkpoints"] = choices.setdefault("checkpoint", [])
    answer["models"] = models
    answer["shipped_workflows"] = [name for name in choices["workflow"] if runtime.workflows.is_shipped(name)]
    return jsonify(answer)


# --- models and their families ------------------------------------------------------


@bp.get("/models")
def models_list():
    """ComfyUI's models (checkpoints and diffusion models) and LoRAs, each with its family, variant, the
    evidence for them and (models) the recipe; the families and variants a person may choose from."""
    runtime = current_runtime()
    answer = {"families": [{**f.describe(), "recipe": f.recipe.describe()} for f in FAMILIES.values()],
              "variants": [{"name": v.name, "label": v.label} for v in VARIANTS.values()],
              "models": [], "loras": [], "reachable": True}
    client = runtime.comfy.first
    try:
        answer["models"] = [m.describe() for m in runtime.catalog.models(client)]
        answer["loras"] = [m.describe() for m in runtime.catalog.loras(client)]
    except ComfyError as exc:
        answer.update(reachable=False, error=exc.message)
    return jsonify(answer)


@bp.post("/models")
def correct_model():
    """What a file is, in the person's words: ``{"name", "family", "variant"}``; a null family forgets it."""
    body = json_body()
    name = optional_text(body, "name", 300)
    if name is None:
        raise BadInput("send the model file's 'name'", code="bad_name")
    family, variant = body.get("family"), body.get("variant") or None
    if family is not None and family not in FAMILIES:
        raise BadInput(f"'family' must be one of {', '.join(FAMILIES)}, or null to forget", code="bad_family")
    if variant is not None and (variant not in VARIANTS or family is None):
        raise BadInput(f"'variant' must be one of {', '.join(VARIANTS)}, or null (with a family)", code="bad_variant")
    runtime = current_runtime()
    runtime.catalog.remember(name, family, variant)
    try:
        listed = {m.name: m for m in runtime.catalog.models(runtime.comfy.first) + runtime.catalog.loras(runtime.comfy.first)}
    except ComfyError:
        listed = {}
    found = listed.get(name)
    return jsonify(found.describe() if found else {"name": name, "family": family, "variant": variant,
                                                   "evidence": "your choice" if family else "not in ComfyUI"})


def workflow_defaults(library, names: list[str]) -> dict:
    """Each workflow's own values; one that no longer loads has none (a job with it says why)."""
    found = {}
    for name in names:
        try:
            found[name] = library.load(name).defaults
        except WorkflowError as exc:
            log.info("workflow %s has no defaults to show: %s", name, exc.message)
            found[name] = {}
    return found


@bp.post("/workflows")
def upload_workflow():
    upload = request.files.get("workflow")
    if upload is None:
        raise BadInput("send the workflow file as the multipart field 'workflow'", code="missing_workflow")
    workflow = current_runtime().workflows.save_upload(upload.filename or "workflow.json", upload.read())
    log.info("workflow %s uploaded: roles %s", workflow.name, workflow.roles.describe())
    return jsonify({"name": workflow.name, "roles": workflow.roles.describe(), "defaults": workflow.defaults}), 201


@bp.get("/speech")
def speech_servers():
    """The speech servers in use and what they offer, for the settings panel's model and voice choices."""
    runtime = current_runtime()
    asr = runtime.transcriber.pool.servers() if runtime.settings.asr_url else []
    tts = runtime.voices.servers.pool.servers() if runtime.voices.servers is not None else []

    def offered(servers: list[dict], key: str) -> list[str]:
        return sorted({name for srv in servers if srv["protocol"] != "local" for name in srv.get(key) or []})

    return jsonify({"asr": asr, "tts": tts, "choices": {"asr_model": offered(asr, "models"),
                                                          "tts_server_voice": offered(tts, "voices")}})


@bp.post("/speak")
def speak():
    """Speak an (edited) caption again, by a voice of its ``language`` when that is not English; answers the
    audio's URL and the voice that spoke."""
    body = json_body()
    text = body.get("text")
    if not isinstance(text, str):
        raise BadInput("send the caption as 'text'", code="empty_text")
    runtime = current_runtime()
    spoken = runtime.voices.speak(text, optional_text(body, "engine", 20), language=fixed(language_of(body)))
    if spoken is None:
        return jsonify({"audio_url": None, "engine": "off"})
    audio_id = new_job_id()
    runtime.store.save_audio(audio_id, spoken.wav)
    return jsonify({"audio_url": f"/outputs/{audio_id}.wav", "duration_s": round(spoken.duration_s, 2),
                    "elapsed_s": round(spoken.elapsed_s, 3), "engine": spoken.engine, "voice": spoken.voice,
                    "language": spoken.language, "sample_rate": spoken.sample_rate})


# --- settings and gallery -----------------------------------------------------------


@bp.get("/settings")
def get_settings():
    return jsonify(current_runtime().settings_view())


@bp.post("/settings")
def change_settings():
    """Partial update: only the fields sent change; they apply at once and persist."""
    runtime = current_runtime()
    warnings: list[str] = []
    runtime.update(json_body(), warnings)
    return jsonify({**runtime.settings_view(), "warnings": warnings})


@bp.get("/gallery")
def gallery():
    try:
        limit = min(200, max(1, int(request.args.get("limit", 60))))
        before = float(request.args["before"]) if request.args.get("before") else None
    except ValueError:
        raise BadInput("'limit' and 'before' must be numbers", code="bad_query")
    return jsonify({"entries": current_runtime().history.list(limit, before, only_images=request.args.get("all") != "1")})


def gallery_entry_or_404(job_id: str) -> dict:
    entry = current_runtime().history.get(job_id) if JOB_ID.match(job_id) else None
    if entry is None:
        raise UserFacingError("that picture is not in the gallery", code="unknown_entry", status=404)
    return entry


@bp.get("/gallery/<job_id>")
def gallery_entry(job_id):
    """One entry, with ``chain``: the pictures it was changed from, its parent first."""
    entry = gallery_entry_or_404(job_id)
    return jsonify({**entry, "chain": current_runtime().history.chain(job_id)})


@bp.delete("/gallery/<job_id>")
def delete_gallery_entry(job_id):
    gallery_entry_or_404(job_id)
    runtime = current_runtime()
    runtime.history.delete(job_id)
    runtime.store.delete(job_id)
    log.info("gallery entry %s deleted", job_id)
    return jsonify({"deleted": job_id})
