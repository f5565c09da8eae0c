"""Websockets of a browser tab: ``/ws`` carries its own jobs' events as JSON; ``/ws/audio`` takes
a recording as it is spoken and answers its live transcript (frames in ``asr_stream``), then
starts the job with the final text."""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import queue
import re
import socket
import threading
import time

from flask import Blueprint, request
from flask_sock import ConnectionClosed, Sock

from ..config import KNOBS
from ..errors import BadInput, UserFacingError
from ..jobs import JOB_ID
from ..speech import check_start, frame, unsure
from .api import job_request_from
from .context import current_runtime

log = logging.getLogger(__name__)
bp = Blueprint("live", __name__)
sock = Sock()
SESSION = re.compile(r"^[\w-]{8,64}$")
KEEPALIVE_S = 15.0
CLOSE_WAIT_S = 1.0  # how long a closing socket waits for the page's close reply


def closes_cleanly(handler):
    """A websocket route that ends with a close handshake and nothing after it. Under werkzeug's server,
    flask-sock answers HTTP on the socket once the route returns; a browser reads those bytes as a broken
    frame ("Invalid frame header" in its console). So the route closes (or answers the page's close),
    waits for the handshake to finish, and shuts the connection down before werkzeug can write."""
    @functools.wraps(handler)
    def route(ws, *args, **kwargs):
        try:
            return handler(ws, *args, **kwargs)
        finally:
            if ws.mode == "werkzeug":
                try:
                    ws.close(1000, "done")
                except ConnectionClosed:
                    pass  # the page closed first; its close frame was answered
                ws.thread.join(timeout=CLOSE_WAIT_S)  # the page's close reply ends the reading thread
                try:
                    ws.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already gone
    return route


@sock.route("/ws", bp=bp)
@closes_cleanly
def relay(ws):
    session = request.args.get("session", "")
    if not SESSION.match(session):
        ws.send(json.dumps({"type": "error", "code": "bad_session", "message": "open /ws?session=<id>"}))
        return
    pipeline = current_runtime().pipeline
    subscription = pipeline.hub.subscribe(session)
    try:
        ws.send(json.dumps({"type": "hello", "session": session}))  # subscribed: events from now on arrive
        # A page that reconnects (reload, network blip, server restart) picks up its unfinished jobs,
        # and the job it follows (?job=<id>) as it stands now, also when it finished meanwhile.
        followed = request.args.get("job", "")
        for job in pipeline.jobs_for(session):
            if not job.finished or job.id == followed:
                ws.send(json.dumps({"type": "resume", "job_id": job.id, "snapshot": job.snapshot()}))
                followed = "" if job.id == followed else followed
        entry = current_runtime().history.get(followed) if JOB_ID.match(followed) else None
        if entry is not None:
            ws.send(json.dumps({"type": "resume", "job_id": followed, "snapshot": entry}))
        while True:
            try:
                event = subscription.get(timeout=KEEPALIVE_S)
            except queue.Empty:
                event = {"type": "ping"}
            ws.send(json.dumps(event))
    except ConnectionClosed:
        pass
    finally:
        pipeline.hub.unsubscribe(session, subscription)


@sock.route("/ws/audio", bp=bp)
@closes_cleanly
def audio_stream(ws):
    """One recording: ``start``, PCM frames, ``stop`` in; partials, the final text and the started job out."""
    session = request.args.get("session", "")
    runtime = current_runtime()
    idle_s = runtime.settings.stream_idle_s
    lock = threading.Lock()  # partials come from the transcriber's thread

    def send(message: dict) -> None:
        with lock:
            ws.send(json.dumps(message))

    def receive():
        message = ws.receive(timeout=idle_s)
        if message is None:
            raise UserFacingError(f"the recording stream sent nothing for {idle_s:g} s and was closed",
                                  code="stream_idle", status=408)
        return message

    stream = None
    submitted = False
    try:
        if not SESSION.match(session):
            raise BadInput("open /ws/audio?session=<id>", code="bad_session")
        start = control_frame(receive())
        if start.get("type") != "start":
            raise BadInput("the first frame must be 'start'", code="bad_frame")
        check_start(start)
        options = {key: value for key, value in start.items() if key not in ("type", "sample_rate", "format")}
        job_request = job_request_from(options, session, None)  # bad options are refused before any audio
        drafts = runtime.pipeline.drafts

        def on_heard(kind: str, heard) -> None:  # words are sketched, the pause starts the picture, new words cancel it
            drafts.heard(kind, dataclasses.replace(
                job_request, transcript=heard.text if heard else None, heard=heard_fields(heard) if heard else None,
                overrides=dict(job_request.overrides)))

        stream = runtime.live.open(send, runtime.settings.max_audio_s,
                                   job_request.overrides.get("language", runtime.settings.language), on_heard)
        runtime.transcriber.start_loading(stream.asked or "auto")  # the language's model, while the person speaks
        send(frame("ready"))
        while True:
            message = receive()
            if isinstance(message, bytes):
                note = stream.feed(message)
                if note:
                    send(frame("note", message=note))
                continue
            control = control_frame(message)
            if control.get("type") == "language":  # the person corrects the language while speaking
                language = runtime.check(KNOBS["language"], control.get("language"), "job")
                log.info("live stream of %s: the language is %s (the person's correction)", session, language)
                job_request.overrides["language"] = language
                stream.correct_language(language)
                runtime.transcriber.start_loading(language)
                continue
            if control.get("type") != "stop":
                raise BadInput("expected audio, 'language' or 'stop'", code="bad_frame")
            drafts.heard("stop", job_request)
            break
        final = stream.finish()
        log.info("live transcript of %.1f s ready %.3f s after stop (%d passes%s)", final.duration_s,
                 final.elapsed_s, final.passes, ", one after Stop" if final.pass_after_stop else "")
        heard = heard_fields(final.heard)
        send(frame("final", text=final.text, elapsed_s=round(final.elapsed_s, 3),
                   duration_s=round(final.duration_s, 2), passes=final.passes,
                   pass_after_stop=final.pass_after_stop, **heard))
        job = runtime.pipeline.submit(dataclasses.replace(job_request, transcript=final.text, heard=heard,
                                                          timings={"asr": final.elapsed_s}))
        submitted = True
        send(frame("job", snapshot=job.snapshot()))
        close_after_page(ws, 1000, "done")
    except UserFacingError as exc:
        log.info("live stream of %s ended: %s %s", session, exc.code, exc.message)
        try:
            send(frame("error", code=exc.code, message=exc.message))
        except ConnectionClosed:
            return
        close_after_page(ws, 1008 if exc.status < 500 else 1011, exc.code)
    except ConnectionClosed:
        log.info("live stream of %s: the page went away", session)
    except Exception:
        log.exception("live stream of %s failed", session)
        try:  # the page uploads its own recording instead
            ws.close(1011, "internal_error")
        except ConnectionClosed:
            pass
    finally:
        if stream is not None:
            stream.close()
            if not submitted:  # no job came of this recording: its draft is not wanted
                runtime.pipeline.drafts.cancel(session, "the recording ended without a job")


def close_after_page(ws, code: int, reason: str, grace_s: float = 2.0) -> None:
    """The page closes once it has the last frame; only then may this handler return, so the frames
    not yet delivered are not cut off (audio still in flight meanwhile is dropped)."""
    deadline = time.monotonic() + grace_s
    try:
        while time.monotonic() < deadline:
            ws.receive(timeout=max(0.01, deadline - time.monotonic()))  # audio still in flight is dropped
        ws.close(code, reason)
    except ConnectionClosed:
        pass


def heard_fields(heard) -> dict:
    """What a recording's last pass heard, as the final frame and the job carry it."""
    if heard is None:
        return {"language": None, "language_probability": None, "language_unsure": False, "translation": None}
    probability = None if heard.probability is None else round(heard.probability, 3)
    return {"language": heard.language, "language_probability": probability, "language_unsure": unsure(probability),
            "translation": heard.translation}


def control_frame(message) -> dict:
    if isinstance(message, bytes):
        raise BadInput("expected a JSON control frame, got audio", code="bad_frame")
    try:
        value = json.loads(message)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadInput("a control frame must be a JSON object", code="bad_frame")
    return value
