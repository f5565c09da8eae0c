"""A stand-in for ComfyUI's ``main.py``, to test starting a person's ComfyUI without ComfyUI.

``write_main(folder, **scenario)`` writes ``folder/main.py``; run as ComfyUI's would be
(``main.py --listen 127.0.0.1 --port N --preview-method auto --disable-auto-launch``), it
behaves like ComfyUI's start in one scenario, then serves the fake ComfyUI on that port:

- ``delay_s``: a slow start (custom nodes loading) before the port answers
- ``fail_runs``: the first n runs exit at once with status 1 and a traceback, as with torch missing
- ``crash_runs`` + ``crash_after_s``: the first n runs serve, then die with status 3
- ``ignore_sigterm``: it ignores SIGTERM (only SIGKILL stops it)
- ``no_gpu``: a CUDA PyTorch on a machine without a driver: it dies at start unless run with ``--cpu``

Each run appends its arguments to ``folder/runs.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .data import ROOT

TEMPLATE = """import sys
sys.path.insert(0, {root!r})
from tests.support.comfy_standin import main
main(sys.argv[1:], {scenario!r})
"""


def write_main(folder: Path, **scenario) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "main.py"
    path.write_text(TEMPLATE.format(root=str(ROOT), scenario=scenario))
    return path


def runs(folder: Path) -> list[dict]:
    """Each run's arguments and pid, in order."""
    path = folder / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def main(argv: list[str], scenario: dict) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--preview-method", default="none")
    parser.add_argument("--disable-auto-launch", action="store_true")
    parser.add_argument("--cpu", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(sys.argv[0]).resolve().parent
    with open(folder / "runs.jsonl", "a") as record:
        record.write(json.dumps({"argv": argv, "pid": os.getpid()}) + "\n")
    run = len(runs(folder))
    if scenario.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("Checkpoint files will always be loaded safely.", flush=True)
    if scenario.get("no_gpu") and not args.cpu:  # as torch says it on a machine without a driver
        print("Traceback (most recent call last):\n  File \"main.py\", line 1, in <module>\nRuntimeError: Found no "
              "NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver from "
              "http://www.nvidia.com/Download/index.aspx", flush=True)
        sys.exit(1)
    if run <= scenario.get("fail_runs", 0):
        print("Traceback (most recent call last):\n  File \"main.py\", line 1, in <module>\n"
              "ModuleNotFoundError: No module named 'torch'", flush=True)
        sys.exit(1)
    time.sleep(scenario.get("delay_s", 0.0))
    from .fake_comfy import FakeComfyUI, Knobs

    with FakeComfyUI(Knobs(step_delay_s=0.01), port=args.port) as fake:
        print(f"To see the GUI go to: {fake.url}", flush=True)
        if run <= scenario.get("crash_runs", 0):
            time.sleep(scenario.get("crash_after_s", 1.0))
            print("Segmentation fault", flush=True)
            os._exit(3)
        threading.Event().wait()
