"""``speech2image doctor``: what is found, what is missing, and what to do about it, one line each.

Each check says what it found, or what is wrong and the fix. ``fatal`` marks what keeps the
app from serving a first request (a recording turned into a prompt); the command exits
non-zero when one of those fails. A missing LLM, ComfyUI or voice is not fatal: the app then
writes prompts offline, stops at the prompt, or stays silent, and says so on the page.
Nothing is started here: a ComfyUI folder is checked, not run.
"""
from __future__ import annotations

import os
import socket
import sys
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from .config import Settings, site_folder
from .errors import UserFacingError
from .picture import (
    DISCOVERY_URLS,
    MISS_HINT,
    START_HINT,
    ComfyClient,
    ComfyError,
    ComfyLauncher,
    Probe,
    device_kind,
    parse_urls,
    probe,
)
from .web import UnsafeBind, check_bind, is_loopback

MIN_PYTHON = (3, 10)


@dataclass
class Check:
    name: str  # python, settings, bind, data, port, page, whisper, voice, llm, comfyui
    ok: bool
    text: str  # what was found, or what is wrong
    fix: str = ""  # what to do when not ok
    fatal: bool = False  # the app cannot serve a first request while this fails
    details: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{'✔' if self.ok else '✘'} {self.text}" + (f" — fix: {self.fix}" if self.fix and not self.ok else "")


def report(checks: list[Check]) -> dict:
    """The JSON answer of ``doctor --json``."""
    return {"ok": not any(c.fatal and not c.ok for c in checks), "checks": [asdict(c) for c in checks]}


def diagnose(load_timeout_s: float = 300.0) -> list[Check]:
    """Every check, in the order a person fixes things: Python, settings, then what the app needs."""
    version = ".".join(map(str, sys.version_info[:3]))
    checks = [Check("python", sys.version_info >= MIN_PYTHON, f"Python {version} ({sys.executable})",
                    f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer", fatal=True)]
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        return checks + [Check("settings", False, str(exc), "correct or unset that variable", fatal=True)]
    bind, data = bind_check(settings), data_check(settings)
    checks += [bind, data, port_check(settings), page_check(settings)]
    if not data.ok:
        return checks  # no data folder: no app to ask about the rest
    from . import create_app

    try:
        app = create_app({"preload": False, **({} if bind.ok else {"host": "127.0.0.1"})})
    except Exception as exc:  # what a first start would meet too
        return checks + [Check("app", False, f"the app could not be built: {exc}", "see the message", fatal=True)]
    runtime = app.extensions["speech2image"]
    try:
        checks.append(whisper_check(runtime.transcriber, load_timeout_s))
        checks.append(voice_check(runtime.voices.get()))
        checks += llm_checks(runtime.llm)
        checks += comfyui_checks(runtime.settings, runtime.workflows, Path(app.instance_path), runtime.catalog)
    finally:
        runtime.pipeline.shutdown()
    return checks


# --- the app's own conditions ------------------------------------------------------------


def bind_check(s: Settings) -> Check:
    try:
        check_bind(s.host, s.token)
    except UnsafeBind as exc:
        return Check("bind", False, str(exc), "set SPEECH2IMAGE_TOKEN, or SPEECH2IMAGE_HOST=127.0.0.1", fatal=True)
    where = "this computer only" if is_loopback(s.host) else "the network, behind the access token"
    return Check("bind", True, f"serves http://{s.host}:{s.port} to {where}")


def data_check(s: Settings) -> Check:
    folder = Path(s.data_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_file = folder / f".doctor-{uuid.uuid4().hex}"
        probe_file.write_bytes(b"ok")
        probe_file.unlink()
    except OSError as exc:
        return Check("data", False, f"the data folder {folder} is not writable ({exc})",
                     "set SPEECH2IMAGE_DATA_DIR to a folder you can write", fatal=True)
    return Check("data", True, f"data folder {folder} is writable (pictures, gallery, settings, ComfyUI log)")


def port_check(s: Settings) -> Check:
    family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # as the web server does; on Windows this option would take the port from another
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((s.host, s.port))
            return Check("port", True, f"port {s.port} is free")
        except OSError as exc:
            held = f"port {s.port} on {s.host} cannot be used ({exc.strerror or exc})"
    url = f"http://{_loopback(s.host)}:{s.port}"
    try:
        answer = requests.get(f"{url}/api/health", timeout=2)
    except requests.RequestException:
        return Check("port", False, f"{held}: another program holds it",
                     "stop that program, or set SPEECH2IMAGE_PORT to a free port", fatal=True)
    health = _json(answer)
    if answer.status_code == 401 or (isinstance(health, dict) and "whisper" in health):
        # This app, already serving: the natural moment to run doctor. What it sees is its own health.
        return Check("port", True, f"speech2image is already running at {url}" +
                     (f": {_health_line(health)}" if answer.ok else " (its health needs the access token)"))
    server = answer.headers.get("Server")
    return Check("port", False, f"{held}: another web server answers there "
                 f"(HTTP {answer.status_code}{f', {server}' if server else ''})",
                 "stop that program, or set SPEECH2IMAGE_PORT to a free port", fatal=True)


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "localhost") else f"[{host}]" if ":" in host else host


def _json(answer: requests.Response):
    try:
        return answer.json()
    except ValueError:
        return None


def _health_line(health: dict) -> str:
    """What a running app's /api/health says, in a line: each part's state, and jobs in flight."""
    parts = {"Whisper": "whisper", "LLM": "llm", "ComfyUI": "comfyui", "voice": "tts"}
    line = ", ".join(f"{label} {(health.get(key) or {}).get('state', 'unknown')}" for label, key in parts.items())
    in_flight = (health.get("jobs") or {}).get("in_flight")
    return line + (f", {in_flight} job(s) in flight" if in_flight else "")


def page_check(s: Settings) -> Check:
    wanted = [site_folder("templates") / "index.html", site_folder("static") / "js" / "main.js",
              site_folder("workflows") / "txt2img.json"]
    missing = [str(path) for path in wanted if not path.is_file()]
    if missing:
        return Check("page", False, f"the page's files are missing: {', '.join(missing)}",
                     "reinstall speech2image (pip install .)", fatal=True)
    return Check("page", True, f"the page's files are in {site_folder('templates').parent}")


# --- models ------------------------------------------------------------------------------


def whisper_check(transcriber, timeout_s: float) -> Check:
    transcriber.start_loading()
    transcriber.wait_ready(timeout_s)
    status = transcriber.status()
    if "servers" in status:  # SPEECH2IMAGE_ASR_URL: a job waits for none of them to load, so none is fatal
        each = "; ".join(f"{srv['url']} {srv['state']}" for srv in status["servers"])
        return Check("whisper", status["state"] == "ready", f"speech recognition servers: {each}", status.get("fix", ""),
                     details=status)
    if status["state"] != "ready":
        return Check("whisper", False, f"Whisper '{status['model']}' did not load: {status.get('error', status['state'])}",
                     "set SPEECH2IMAGE_WHISPER_MODEL to 'bundled', a model name (downloaded once, needs the "
                     "internet) or a model folder", fatal=True, details=status)
    return Check("whisper", True, f"Whisper '{status['model']}' loads on {status['device']} ({status['compute_type']}) "
                                  f"in {status.get('load_s', 0):.1f} s", details=status)


def voice_check(speaker) -> Check:
    status = speaker.status()
    if status["state"] == "off":
        return Check("voice", True, "voice off: captions are not spoken", details=status)
    try:
        spoken = speaker.speak("Hello.")
    except UserFacingError as exc:
        return Check("voice", False, f"the {status['engine']} voice does not speak: {exc.message}",
                     "see the README's voice table (SPEECH2IMAGE_TTS_ENGINE, SPEECH2IMAGE_TTS_VOICE); pictures "
                     "come without a voice until then", details=status)
    return Check("voice", True, f"voice {spoken.engine} ({spoken.voice}) speaks ({spoken.sample_rate} Hz)",
                 details=speaker.status())


def llm_checks(client) -> list[Check]:
    if client.off:
        return [Check("llm", True, "LLM off: prompts are written offline")]
    servers = client.servers()
    if not servers:
        return [Check("llm", False, f"no LLM server answered (tried {', '.join(client.candidates())})",
                      "start LM Studio's local server (Developer tab, port 1234), Ollama or llama.cpp, or set "
                      "SPEECH2IMAGE_LLM_URL; until then prompts are written offline")]
    checks = []
    for server, models in servers:
        listed = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
        wanted = client.model_setting
        if not models or (wanted and wanted not in models):
            what = f"model '{wanted}' is not among its models ({listed or 'none'})" if models else "no model is loaded"
            checks.append(Check("llm", False, f"LLM server {server}: {what}",
                                "load a model in the LLM app, or set SPEECH2IMAGE_LLM_MODEL to one it lists",
                                details={"server": server, "models": models}))
        else:
            checks.append(Check("llm", True, f"LLM server {server} with {len(models)} model(s): {listed}",
                                details={"server": server, "models": models}))
    return checks


# --- ComfyUI -----------------------------------------------------------------------------


def comfyui_checks(s: Settings, workflows, instance: Path, catalog=None) -> list[Check]:
    configured = parse_urls(s.comfyui_url)
    look_at = configured or parse_urls(s.comfyui_discover) or list(DISCOVERY_URLS)
    try:
        workflow = workflows.load(s.workflow)
    except UserFacingError:
        workflow = None
    checks, tried = [], []
    for url in look_at:
        answer = probe(url, timeout_s=2.0)
        tried.append(answer)
        if answer.version:
            checks.append(comfyui_check(answer, "configured" if configured else "discovered", workflow))
            if catalog is not None:
                checks.append(models_check(ComfyClient(url, http_timeout_s=10.0), catalog))
        elif configured:
            checks.append(Check("comfyui", False, f"ComfyUI at {url}: {answer.answer}", START_HINT,
                                details={"url": url}))
    if not configured and not checks:
        looked = "; ".join(f"{p.url}: {p.answer}" for p in tried)
        checks.append(Check("comfyui", False, f"no ComfyUI found ({looked})",
                            "it is started for you (below)" if s.comfyui_dir else MISS_HINT))
    if s.comfyui_dir:
        checks.append(launch_check(s, look_at[0], instance, bool(configured)))
    return checks


def comfyui_check(answer: Probe, how: str, workflow) -> Check:
    client = ComfyClient(answer.url, http_timeout_s=10.0)
    stats = answer.stats or {}
    device = device_kind(stats) or "an unknown device"
    argv = (stats.get("system") or {}).get("argv") or []
    preview = argv[argv.index("--preview-method") + 1] if "--preview-method" in argv[:-1] else "none"
    problems, fixes = [], []
    try:
        checkpoints = client.checkpoints()
    except ComfyError as exc:
        checkpoints = []
        problems.append(f"its checkpoints could not be listed ({exc.message})")
    if not checkpoints:
        problems.append("it has no checkpoints")
        fixes.append("put a model in ComfyUI/models/checkpoints")
    if preview == "none":
        problems.append("previews are off")
        fixes.append("start it with --preview-method auto (ComfyUI Desktop: set the preview method to auto in its "
                     "server settings)")
    missing = []
    if workflow is not None:
        try:
            missing = client.missing_nodes(node["class_type"] for node in workflow.graph.values())
        except ComfyError as exc:
            problems.append(f"its nodes could not be listed ({exc.message})")
        if missing:
            problems.append(f"the workflow {workflow.name} needs nodes it lacks: {', '.join(missing)}")
            fixes.append("install those custom nodes (ComfyUI-Manager helps) or choose another workflow")
    shown = ", ".join(checkpoints[:3]) + (f" and {len(checkpoints) - 3} more" if len(checkpoints) > 3 else "")
    found = (f"ComfyUI {answer.version} at {answer.url} ({how}) on {'the CPU (expect minutes per picture)' if device == 'cpu' else device}: "
             f"{len(checkpoints)} checkpoint(s){f' ({shown})' if shown else ''}, previews {preview}"
             + (f", every node of {workflow.name} present" if workflow is not None and not missing else ""))
    details = {"url": answer.url, "version": answer.version, "how": how, "device": device_kind(stats),
               "checkpoints": checkpoints, "preview_method": preview, "missing_nodes": missing}
    if problems:
        return Check("comfyui", False, found + "; but " + "; ".join(problems), "; ".join(fixes), details=details)
    return Check("comfyui", True, found, details=details)


def models_check(client: ComfyClient, catalog) -> Check:
    """The families of ComfyUI's models, and each diffusion model that lacks its text encoders or VAE."""
    try:
        found = catalog.models(client)
        problems = catalog.companion_problems(client)
    except ComfyError as exc:
        return Check("models", False, f"ComfyUI's models could not be listed: {exc.message}", START_HINT)
    families = Counter(model.label for model in found)
    text = f"{len(found)} model(s) in ComfyUI: " + (", ".join(f"{n} {label}" for label, n in families.most_common())
                                                    or "none")
    unknown = [m.name for m in found if m.source == "unknown"]
    if unknown:
        text += f" ({len(unknown)} of unknown family, drawn as SD 1.5: say what they are under Settings → Models)"
    details = {"models": [m.describe() for m in found], "missing_companions": problems}
    if problems:
        return Check("models", False, text + "; but " + "; ".join(problems.values()),
                     "put the files named above in those folders, then restart ComfyUI", details=details)
    return Check("models", True, text, details=details)


def launch_check(s: Settings, url: str, instance: Path, configured: bool) -> Check:
    launcher = ComfyLauncher(instance / "comfyui.log", url)
    launcher.configure(s.comfyui_dir, s.comfyui_python, s.comfyui_args)
    details = {"folder": s.comfyui_dir, "command": launcher.command(), "log": str(launcher.log_path)}
    if configured:
        return Check("comfyui_dir", False, f"SPEECH2IMAGE_COMFYUI_DIR is set, but so is SPEECH2IMAGE_COMFYUI_URL: the "
                                           f"folder {s.comfyui_dir} is started only when the URL is empty",
                     "empty SPEECH2IMAGE_COMFYUI_URL to have ComfyUI started", details=details)
    problem = launcher.problem()
    if problem:
        return Check("comfyui_dir", False, problem, "correct the folder or its Python in Settings", details=details)
    return Check("comfyui_dir", True, f"when no ComfyUI answers, it is started from {s.comfyui_dir}: "
                                      f"{' '.join(launcher.command())} (log: {launcher.log_path})", details=details)
