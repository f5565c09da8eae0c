"""The ``speech2image`` command: ``serve`` (the default), ``doctor``, ``models``, ``transcribe`` and ``render``.

``speech2image`` (installed by pip), ``python -m speech2image`` and ``python app.py`` are the
same program. ``transcribe`` and ``render`` run through the app itself (its Runtime and
Pipeline, with the settings of the environment and of the page's settings.json), so they
meet the same settings and fail with the same words as the web page.
"""
from __future__ import annotations

import argparse
import json
import logging
import queue
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from .config import JOB_KNOBS, Settings

COMMANDS = ("serve", "doctor", "models", "transcribe", "render")
# The end of a job, and the exit status each gives the render command.
EXIT_STATUS = {"done": 0, "error": 1, "prompt_ready": 3, "cancelled": 130}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")  # serve is the default
    for stream in (sys.stdout, sys.stderr):  # ✔ and ✘ on a console that cannot show them
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = parser().parse_args(argv)
    return args.run(args)


def parser() -> argparse.ArgumentParser:
    from . import __version__

    top = argparse.ArgumentParser(prog="speech2image", description="Say what you want to see; get a picture and a "
                                  "spoken caption. Settings come from SPEECH2IMAGE_* variables and the page's "
                                  "settings.json in the data folder.")
    top.add_argument("--version", action="version", version=f"speech2image {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    serve_parser = commands.add_parser("serve", help="start the web app (the default)")
    serve_parser.set_defaults(run=serve)

    doctor_parser = commands.add_parser("doctor", help="check what is found and what to fix, one line each")
    doctor_parser.add_argument("--json", action="store_true", help="the checks as JSON, for scripts")
    doctor_parser.set_defaults(run=doctor)

    models_parser = commands.add_parser("models", help="ComfyUI's models and LoRAs with their families, as a table")
    models_parser.add_argument("--json", action="store_true", help="the answer of GET /api/models, for scripts")
    models_parser.set_defaults(run=models)

    transcribe_parser = commands.add_parser("transcribe", help="print what is said in audio files")
    transcribe_parser.add_argument("files", nargs="+", metavar="FILE")
    transcribe_parser.set_defaults(run=transcribe)

    render_parser = commands.add_parser("render", help="the whole pipeline: text or a recording to a picture")
    render_parser.add_argument("text", nargs="?", help="what you want to see, as you would say it")
    render_parser.add_argument("--audio", metavar="FILE", help="a recording instead of the text")
    render_parser.add_argument("--prompt", action="store_true",
                               help="TEXT is the Stable Diffusion prompt itself (no prompt writer)")
    render_parser.add_argument("--out", metavar="FILE.png", help="also save the picture (with its metadata) here")
    render_parser.add_argument("--speak", metavar="FILE.wav", help="speak the caption into this WAV file")
    for field_name, knob in JOB_KNOBS.items():  # the same per-job settings as the page's, checked the same way
        render_parser.add_argument(f"--{field_name.replace('_', '-')}", dest=field_name,
                                   metavar=knob.kind.__name__.upper(), help=knob.label)
    render_parser.set_defaults(run=render)
    return top


def _settings() -> Settings | None:
    try:
        return Settings.from_env()
    except ValueError as exc:
        print(f"speech2image: {exc}", file=sys.stderr)
        return None


def _logging(level: str) -> None:
    level_number = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=level_number, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(level_number)  # it sets INFO on itself otherwise


# --- serve ----------------------------------------------------------------------------------


def serve(args) -> int:
    """What ``python app.py`` always did: the web app on SPEECH2IMAGE_HOST:PORT, on the server
    that fits the address (see serve.py)."""
    from . import create_app
    from .serve import choose_server
    from .serve import serve as serve_app
    from .shutdown import stop_gracefully_on_signals
    from .web import UnsafeBind

    settings = _settings()
    if settings is None:
        return 1
    _logging(settings.log_level)
    try:
        server = choose_server(settings)
        app = create_app()
    except (ValueError, UnsafeBind) as exc:
        print(f"speech2image: {exc}", file=sys.stderr)
        return 1
    # SIGTERM and Ctrl+C: no new jobs, results being saved finish, renders carry on at the next start,
    # and a ComfyUI this app started is stopped (shutdown.py).
    stop_gracefully_on_signals(app)
    serve_app(app, settings, server)
    return 0


# --- doctor ---------------------------------------------------------------------------------


def doctor(args) -> int:
    from .doctor import diagnose, report

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    checks = diagnose()
    answer = report(checks)
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        for check in checks:
            print(check.line())
        print("ready for a first request" if answer["ok"] else "not ready: fix the ✘ lines marked above first")
    return 0 if answer["ok"] else 1


# --- models ---------------------------------------------------------------------------------


def models(args) -> int:
    """ComfyUI's models and LoRAs as a table: name, folder, family, variant, and why we think so."""
    from .picture import ComfyError

    runtime = _runtime()
    if runtime is None:
        return 1
    try:
        client = runtime.comfy.first
        found = [m.describe() for m in runtime.catalog.models(client)]
        loras = [m.describe() for m in runtime.catalog.loras(client)]
    except ComfyError as exc:
        print(f"speech2image models: {exc.message}", file=sys.stderr)
        return 1
    finally:
        runtime.pipeline.shutdown()
    if args.json:
        print(json.dumps({"models": found, "loras": loras}, indent=2))
        return 0
    rows = [(m["name"], m["folder"], m["label"], m["evidence"]) for m in found + loras]
    if not rows:
        print("ComfyUI has no models: put a checkpoint in ComfyUI/models/checkpoints", file=sys.stderr)
        return 1
    widths = [max(len(row[i]) for row in rows + [("MODEL", "FOLDER", "FAMILY", "")]) for i in range(3)]
    for row in [("MODEL", "FOLDER", "FAMILY", "EVIDENCE")] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


# --- transcribe and render --------------------------------------------------------------------


def _runtime():
    """The app's Runtime, as the web app builds it; None (with the reason printed) when it cannot be."""
    from . import create_app
    from .web import UnsafeBind

    settings = _settings()
    if settings is None:
        return None
    _logging("ERROR" if settings.log_level.upper() == "INFO" else settings.log_level)
    try:
        app = create_app({"preload": False, "host": "127.0.0.1"})  # nothing is served: no bind rule to meet
    except UnsafeBind as exc:  # pragma: no cover - the host is loopback
        print(exc, file=sys.stderr)
        return None
    return app.extensions["speech2image"]


def transcribe(args) -> int:
    from .errors import UserFacingError

    runtime = _runtime()
    if runtime is None:
        return 1
    status = 0
    try:
        runtime.transcriber.start_loading()
        for name in args.files:
            label = f"{name}: " if len(args.files) > 1 else ""
            try:
                text = runtime.transcriber.transcribe(Path(name).read_bytes()).text
            except OSError as exc:
                print(f"{name}: cannot be read ({exc.strerror or exc})", file=sys.stderr)
                status = 1
                continue
            except UserFacingError as exc:
                print(f"{name}: {exc.message}", file=sys.stderr)
                status = 1
                continue
            print(label + text, flush=True)
    finally:
        runtime.pipeline.shutdown()
    return status


def render(args) -> int:
    from .errors import UserFacingError
    from .jobs import JobRequest

    if bool(args.text) == bool(args.audio):
        print("speech2image render: give the TEXT to draw or --audio FILE (one of them)", file=sys.stderr)
        return 2
    try:
        audio = Path(args.audio).read_bytes() if args.audio else None
    except OSError as exc:
        print(f"speech2image render: {args.audio} cannot be read ({exc.strerror or exc})", file=sys.stderr)
        return 2
    runtime = _runtime()
    if runtime is None:
        return 1
    pipeline = runtime.pipeline
    try:
        values = {field: getattr(args, field) for field in JOB_KNOBS if getattr(args, field) is not None}
        if not args.speak:
            values["tts_engine"] = "off"  # nobody would hear it
        try:
            overrides = runtime.job_overrides(values)
        except UserFacingError as exc:
            print(f"speech2image render: {exc.message}", file=sys.stderr)
            return 2
        if args.speak and overrides.get("tts_engine", runtime.settings.tts_engine) == "off":
            print("speech2image render: the voice is off; add --tts-engine piper (or espeak) to speak the caption",
                  file=sys.stderr)
            return 2
        session = f"cli-{uuid.uuid4().hex}"
        events = pipeline.hub.subscribe(session)
        texts = {"prompt": args.text} if args.prompt else {"transcript": args.text}
        try:
            job = pipeline.submit(JobRequest(session=session, audio=audio, overrides=overrides, **texts))
        except UserFacingError as exc:
            print(f"speech2image render: {exc.message}", file=sys.stderr)
            return 1
        terminal = Terminal()
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():  # a log line above the bar, never through it
            snapshot = follow(pipeline, job.id, events, terminal)
        return finish(runtime, snapshot, args, terminal)
    finally:
        pipeline.shutdown()


class Terminal:
    """A job's events as a terminal shows them: one line per stage or note (each said once), and a
    progress bar for the sampler with the server's estimate of the time left. When stderr is not a
    terminal (piped, captured, a log file), plain lines instead of the bar: one per sampler step."""

    def __init__(self, live: bool | None = None):
        from tqdm import tqdm

        from .jobs import STAGES

        self.live = sys.stderr.isatty() if live is None else live
        self.tqdm = tqdm
        # The stages the page times, in the page's words ("transcribing…", "sending to ComfyUI…").
        self.stage_words = {s.name: s.label[0].lower() + s.label[1:] for s in STAGES if s.timed}
        self.bar: Any = None  # the tqdm bar while one is shown
        self.said: set[str] = set()

    def say(self, text: str) -> None:
        if text and text not in self.said:
            self.said.add(text)
            self.tqdm.write(text, file=sys.stderr)

    def show(self, event: dict) -> None:
        kind = event["type"]
        if kind == "stage":
            self.say(f"queued #{event['position']}" if event["stage"] == "queued" else self.stage_words.get(event["stage"], ""))
        elif kind == "transcript":
            self.say(f"transcript: {event['text']}")
        elif kind == "prompt":
            self.say(f"prompt ({event['plan'].get('source')}): {event['plan'].get('prompt')}")
        elif kind == "waiting":
            self.say(event["text"])
        elif kind in ("render", "image"):
            for note in event.get("notes", []):
                self.say(f"note: {note}")
        elif kind == "progress" and event.get("max") and not self.live:
            left = f" (about {event['eta_s']:.0f} s left)" if event.get("eta_s") is not None else ""
            self.say(f"rendering: step {event['value']}/{event['max']}{left}")
        elif kind == "progress" and event.get("max"):
            if self.bar is None or self.bar.total != event["max"]:
                self.close()
                self.bar = self.tqdm(total=event["max"], desc="rendering", unit="step", file=sys.stderr)
            self.bar.update(max(0, event["value"] - self.bar.n))
            if event.get("eta_s") is not None:
                self.bar.set_postfix_str(f"about {event['eta_s']:.0f} s left")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def follow(pipeline, job_id: str, events: queue.Queue, terminal: Terminal) -> dict:
    """The job's final snapshot, its events shown on the way. Ctrl+C cancels the job (as the page's
    Cancel does) and waits for it to end."""
    try:
        while True:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                pipeline.cancel(job_id)
                terminal.say("cancelling…")
                continue
            if event["type"] == "stage" and "snapshot" in event:
                return event["snapshot"]
            terminal.show(event)
    finally:
        terminal.close()


def finish(runtime, snapshot: dict, args, terminal: Terminal) -> int:
    """Say how the job ended; put the picture and the voice where asked. The exit status says it too."""
    stage = snapshot["stage"]
    for note in snapshot.get("notes") or []:
        terminal.say(f"note: {note}")
    if stage == "error":
        print(f"speech2image render: {snapshot['error']['message']}", file=sys.stderr)
    elif stage == "prompt_ready":
        print(f"prompt: {snapshot['prompt']}\ncaption: {snapshot['caption']}")
    elif stage == "done":
        image = runtime.store.path(snapshot["job_id"], "png")
        if args.out:
            shutil.copyfile(image, args.out)  # the bytes as saved: the metadata comes along
        print(args.out or image)
    if args.speak and snapshot.get("audio_url"):
        shutil.copyfile(runtime.store.path(snapshot["job_id"], "wav"), args.speak)
        print(f"caption spoken into {args.speak}: {snapshot['caption']}", file=sys.stderr)
    return EXIT_STATUS.get(stage, 1)
