"""The live relay: one websocket per browser tab carries its own jobs' events as JSON."""
from __future__ import annotations

import json
import logging
import queue
import re

from flask import Blueprint, request
from flask_sock import ConnectionClosed, Sock

from ..store import JOB_ID
from . import current_runtime

log = logging.getLogger(__name__)
bp = Blueprint("live", __name__)
sock = Sock()
SESSION = re.compile(r"^[\w-]{8,64}$")
KEEPALIVE_S = 15.0


@sock.route("/ws", bp=bp)
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
