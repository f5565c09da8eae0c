"""The page's side of /ws and /api/jobs: a browser tab's websocket, starting a job, following it to its end.

- ``Relay(server, session=None)``: a tab's websocket; ``with Relay(server) as relay:`` closes it
- ``start_job(server, session, audio=None, **body) -> job_id``: a job accepted (202), not waited for
- ``run(server, relay=None, timeout=30, audio=None, **body) -> (snapshot, events)``: one job, start to end
- ``finished(event)``: the event that ends a job
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import requests
import websocket

from speech2image.jobs import FINISHED_STAGES


class Relay:
    """A browser tab's websocket: collects its session's events."""

    def __init__(self, server, session=None):
        self.session = session or uuid.uuid4().hex
        self.ws = websocket.create_connection(f"{server.url.replace('http', 'ws', 1)}/ws?session={self.session}",
                                              timeout=10)
        self.events: list[dict] = []
        assert json.loads(self.ws.recv()) == {"type": "hello", "session": self.session}

    def until(self, predicate, timeout=30.0) -> list[dict]:
        """Every event this tab got so far, once one matches ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            event = json.loads(self.ws.recv())
            event["received"] = time.time()
            self.events.append(event)
            if predicate(event):
                return self.events
        raise TimeoutError(f"no matching event; got {[e['type'] for e in self.events]}")

    def close(self):
        self.ws.close()

    def __enter__(self) -> "Relay":
        return self

    def __exit__(self, *exc):
        self.close()


def finished(event):
    return event["type"] == "stage" and event["stage"] in FINISHED_STAGES


def start_job(server, session: str, audio: Path | None = None, **body) -> str:
    """POST /api/jobs for this session as the page does, and the job's id; it must be accepted (202).
    ``server``: anything with a ``url`` (a LiveServer, an AppProcess). ``audio``: a recording, uploaded
    with the rest of the body as form fields; without one the body goes as JSON."""
    if audio is not None:
        audio = Path(audio)
        response = requests.post(server.url + "/api/jobs", data={"session": session, **body},
                                 files={"audio": (audio.name, audio.read_bytes(), f"audio/{audio.suffix[1:]}")},
                                 timeout=60)
    else:
        response = requests.post(server.url + "/api/jobs", json={"session": session, **body}, timeout=60)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def run(server, relay: Relay | None = None, timeout: float = 30.0, audio: Path | None = None,
        **body) -> tuple[dict, list[dict]]:
    """One job on a LiveServer, started with this request body and followed to its end: its final
    snapshot, and the events the tab got meanwhile (the last one ends this job). ``relay``: the tab
    to start it in (several jobs in one tab); without one a tab of its own is opened and closed."""
    own = relay is None
    relay = relay or Relay(server)
    try:
        already = len(relay.events)
        job_id = start_job(server, relay.session, audio=audio, **body)
        events = relay.until(lambda e: finished(e) and e.get("job_id") == job_id, timeout)[already:]
        return events[-1]["snapshot"], events
    finally:
        if own:
            relay.close()
