"""A real ComfyUI seen from outside, for the tests that run against one (SPEECH2IMAGE_TEST_REAL_COMFYUI_URL):
what its queue held while a test ran, what its history says became of each prompt, and its own render time.

- ``REAL_COMFYUI``: the configured address ("" when none); ``real_only``: the mark that skips without it
- ``QueueWatch(url)``: polls ``/queue`` in a thread (``with QueueWatch(url) as watch:``); ``watch.seen`` maps
  every prompt id the queue held to its graph (``first_seen``: when), ``watch.running_seen`` the ones ComfyUI ran;
  ``watch.wait_running(match)`` waits for a running prompt whose graph's texts match; ``watch.new_history()``
  the history entries added since the watch began
- ``entry(url, prompt_id)``: a prompt's history entry (None: not in the history, e.g. deleted from the queue)
- ``outcome(entry)``: "success", "interrupted", "error" or None (no entry); ``stamps(entry)``: its
  status messages' timestamps (ms, ComfyUI's clock) by kind; ``render_s(entry)``: execution_start ->
  execution_success in seconds
- ``texts(graph)``: the CLIPTextEncode texts of a graph, lower-cased and joined; ``latent_sizes(graph)`` and
  ``sampler_steps(graph)``
- ``queue_empty(url, wait_s)``: the queue is empty (waited for up to ``wait_s``)
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable

import pytest
import requests

REAL_COMFYUI = os.environ.get("SPEECH2IMAGE_TEST_REAL_COMFYUI_URL", "").rstrip("/")
real_only = pytest.mark.skipif(not REAL_COMFYUI, reason="set SPEECH2IMAGE_TEST_REAL_COMFYUI_URL to a real ComfyUI")


def history(url: str) -> dict:
    return requests.get(f"{url}/history", timeout=10).json()


def entry(url: str, prompt_id: str) -> dict | None:
    return requests.get(f"{url}/history/{prompt_id}", timeout=10).json().get(prompt_id)


def stamps(found: dict | None) -> dict[str, int]:
    return {kind: data.get("timestamp") for kind, data in ((found or {}).get("status") or {}).get("messages", [])}


def outcome(found: dict | None) -> str | None:
    if found is None:
        return None
    kinds = stamps(found)
    if "execution_success" in kinds:
        return "success"
    return "interrupted" if "execution_interrupted" in kinds else "error"


def render_s(found: dict | None) -> float | None:
    """ComfyUI's own time for a prompt: execution_start -> execution_success (its ms stamps)."""
    kinds = stamps(found)
    if kinds.get("execution_start") and kinds.get("execution_success"):
        return (kinds["execution_success"] - kinds["execution_start"]) / 1000
    return None


def graph_of(found: dict) -> dict:
    return found["prompt"][2]


def texts(graph: dict) -> str:
    return " | ".join(str(n["inputs"].get("text", "")).lower() for n in graph.values()
                      if n.get("class_type") == "CLIPTextEncode")


def latent_sizes(graph: dict) -> list[tuple[int, int]]:
    return [(n["inputs"]["width"], n["inputs"]["height"]) for n in graph.values()
            if n.get("class_type", "").startswith("Empty") and "width" in n["inputs"]]


def sampler_steps(graph: dict) -> list[int]:
    return [n["inputs"]["steps"] for n in graph.values() if "steps" in n.get("inputs", {})]


def queue_empty(url: str, wait_s: float = 30.0) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        queue = requests.get(f"{url}/queue", timeout=10).json()
        if not queue["queue_running"] and not queue["queue_pending"]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


class QueueWatch:
    """Every prompt a real ComfyUI's queue held while the watch ran (pending or running), with its graph;
    a prompt deleted from the queue leaves no history, so this is the only trace of it."""

    def __init__(self, url: str, every_s: float = 0.05):
        self.url = url
        self.every_s = every_s
        self.before = set(history(url))
        self.seen: dict[str, dict] = {}  # prompt id -> graph
        self.running_seen: set[str] = set()
        self.order: list[str] = []  # first seen first
        self.first_seen: dict[str, float] = {}  # prompt id -> when the queue first held it (time.time(), ~every_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                queue = requests.get(f"{self.url}/queue", timeout=5).json()
            except requests.RequestException:
                continue
            for state in ("queue_running", "queue_pending"):
                for item in queue[state]:
                    prompt_id, graph = item[1], item[2]
                    if prompt_id not in self.seen:
                        self.seen[prompt_id] = graph
                        self.order.append(prompt_id)
                        self.first_seen[prompt_id] = time.time()
                    if state == "queue_running":
                        self.running_seen.add(prompt_id)
            self._stop.wait(self.every_s)

    def wait_running(self, match: Callable[[str], bool], timeout: float = 60.0) -> str:
        """The id of a prompt ComfyUI is running (or ran) whose graph's texts ``match``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for prompt_id in list(self.order):
                if prompt_id in self.running_seen and match(texts(self.seen[prompt_id])):
                    return prompt_id
            time.sleep(0.05)
        raise TimeoutError(f"ComfyUI ran no such prompt; saw {[texts(self.seen[p]) for p in self.order]}")

    def new_history(self) -> dict[str, dict]:
        return {k: v for k, v in history(self.url).items() if k not in self.before}

    def all_prompts(self) -> dict[str, dict]:
        """Every prompt ComfyUI got meanwhile: seen in its queue or new in its history (id -> graph)."""
        found = dict(self.seen)
        for prompt_id, item in self.new_history().items():
            found.setdefault(prompt_id, graph_of(item))
        return found

    def start(self) -> "QueueWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> "QueueWatch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
