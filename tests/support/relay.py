"""The page's side of /ws: a browser tab's websocket, and following a job to its end."""
from __future__ import annotations

import json
import time
import uuid

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


def finished(event):
    return event["type"] == "stage" and event["stage"] in FINISHED_STAGES


def run(server, **body) -> dict:
    """Start one job on a LiveServer with this request body and return its final snapshot."""
    relay = Relay(server)
    requests.post(server.url + "/api/jobs", json={"session": relay.session, **body}, timeout=10)
    event = relay.until(finished)[-1]
    relay.close()
    return event["snapshot"]
