"""Helpers the benchmark scripts share: percentiles, a free port, a process's peak memory, following a job."""
from __future__ import annotations

import importlib
import json
import shutil
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the scripts import the app and tests.support (the tests' fakes and helpers)


TEST_SETUP = ("install the test requirements first: scripts/test.sh sets them up "
              "(or .venv/bin/pip install -r requirements-dev.txt, and scripts/system-packages.sh for "
              "the Debian packages)")


def require(modules: tuple[str, ...] = (), programs: tuple[str, ...] = ()) -> None:
    """Stop with what to install when a benchmark needs more than the app does (the tests' extras)."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(f"the Python package {module}")
    missing += [f"the program {program}" for program in programs if shutil.which(program) is None]
    if missing:
        sys.exit(f"{Path(sys.argv[0]).name} needs {' and '.join(missing)}: {TEST_SETUP}")


def pct(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def summary(values, scale: float = 1.0, digits: int = 3) -> dict:
    """p50, p95 and max (times ``scale``), and how many values there were."""
    values = list(values)
    return {"p50": round(pct(values, 0.5) * scale, digits), "p95": round(pct(values, 0.95) * scale, digits),
            "max": round(max(values) * scale, digits) if values else None, "n": len(values)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def follow_job(ws, job_id: str) -> tuple[dict, list[tuple[int, float]], float]:
    """Read the relay until the job ends: its last event, when each sampler step arrived, and when it ended.

    Arrival times are taken the moment a frame is read, so they can be set against the fake
    ComfyUI's send times to measure the relay.
    """
    steps = []
    while True:
        event = json.loads(ws.recv())
        now = time.time()
        if event.get("job_id") != job_id:
            continue
        if event["type"] == "progress" and "value" in event:
            steps.append((event["value"], now))
        if event["type"] == "stage" and event["stage"] in ("done", "error", "cancelled"):
            return event, steps, now


def save_results(path, results) -> None:
    """The benchmark's numbers as JSON at ``path`` (its folder made if need be), and where they went."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
