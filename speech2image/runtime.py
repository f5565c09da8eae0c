"""The app's components, built from the settings, and the settings a person changes on the page.

Where a value comes from, strongest first: the environment at start (``SPEECH2IMAGE_*``, for
this run), then what was saved on the page (``settings.json`` in the instance folder), then
the built-in default. Page edits are checked against ``config.KNOBS``, saved, and applied at
once by rebuilding only the components they touch; ``null`` resets a field to its default.
``Runtime`` is the app's one extension (``app.extensions["speech2image"]``); the web layer
reaches it through ``web.current_runtime()``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import weakref
from pathlib import Path

from flask import Flask

from .config import JOB_KNOBS, KNOBS, Knob, Settings, env_variable, parse_speech_urls
from .errors import BadInput
from .jobs import JobHistory, OutputStore, Pipeline
from .metrics import Metrics
from .picture import (
    DISCOVERY_URLS,
    ComfyDiscovery,
    ComfyLauncher,
    ModelCatalog,
    WorkflowLibrary,
    parse_urls,
    probe,
)
from .prompt import PRESETS, LlmClient, PromptWriter
from .speech import (
    ENGINES,
    LANGUAGE_CHOICES,
    AsrPool,
    LiveTranscriber,
    Speaker,
    Transcriber,
    TtsPool,
    Voices,
)

log = logging.getLogger(__name__)

# Choices a knob names that our own stages know (the others come from servers at run time).
STAGE_CHOICES = {"presets": tuple(PRESETS), "engines": ENGINES, "languages": LANGUAGE_CHOICES}


def _offered_by_speech_servers(pool, key: str) -> list[str] | None:
    """What the speech servers list (models or voices); None when none of them answers."""
    servers = [srv for srv in pool.servers() if srv["protocol"] != "local"] if pool is not None else []
    answering = [srv for srv in servers if srv.get("state") in ("ready", "loading")]
    return sorted({name for srv in answering for name in srv.get(key) or []}) if answering else None


def _offered_by_llm(llm) -> list[str] | None:
    """The models the LLM server lists; None when none answers."""
    server, models = llm.discover()
    return models if server else None


# Knob choices that come from a server: where they come from (for the message) and what it offers now
# (None: it does not answer). A value is checked against them when it is saved or sent with a job.
SERVER_CHOICES = {
    "checkpoints": lambda rt: ("ComfyUI", rt.comfy.offered("checkpoints")),
    "samplers": lambda rt: ("ComfyUI", rt.comfy.offered("samplers")),
    "schedulers": lambda rt: ("ComfyUI", rt.comfy.offered("schedulers")),
    "models": lambda rt: ("the LLM server", _offered_by_llm(rt.llm)),
    "asr_models": lambda rt: ("the speech recognition servers",
                              _offered_by_speech_servers(getattr(rt.transcriber, "pool", None), "models")),
    "server_voices": lambda rt: ("the voice servers", _offered_by_speech_servers(
        rt.voices.servers.pool if rt.voices.servers is not None else None, "voices")),
}


def claim_data_dir(folder: Path):
    """One process recovers and runs a data folder's jobs: an exclusive lock on a file there, held
    while the process lives (the system releases it when the process dies, however it dies).
    The open lock file, or None when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks this way; one app per data folder is assumed
        return open(folder / "speech2image.lock", "a")
    handle = open(folder / "speech2image.lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def editable_view(settings: Settings) -> dict:
    return {name: getattr(settings, name) for name in KNOBS}


class Runtime:
    def __init__(self, base: Settings, instance_path: Path, shipped_workflows: Path,
                 from_environment: frozenset[str] = frozenset()):
        """``base``: the settings at start; ``from_environment``: those of them the environment set."""
        self.base = base
        self.from_environment = frozenset(from_environment) & set(KNOBS)
        instance_path = Path(instance_path)
        self.path = instance_path / "settings.json"
        self._lock = threading.Lock()
        self.workflows = WorkflowLibrary(shipped_workflows, instance_path / "workflows")
        self.saved = self._load_saved()  # what the page saved, kept even where the environment wins now
        self.settings = self._current(self.saved)
        s = self.settings
        if s.language not in LANGUAGE_CHOICES:  # from the environment: a saved one was checked
            raise ValueError(f"{env_variable('language')}: '{s.language}' is not a language Whisper knows; use "
                             f"one of {', '.join(LANGUAGE_CHOICES)}")
        self.models_dir = Path(s.models_dir).expanduser() if s.models_dir else instance_path / "models"
        self.store = OutputStore(instance_path / "outputs")
        self.history = JobHistory(instance_path / "speech2image.db")
        self.metrics = Metrics()
        self.llm = self._llm(s)
        self.prompt_writer = PromptWriter(self.llm)
        look_at = tuple(parse_urls(s.comfyui_discover)) or DISCOVERY_URLS
        launcher = ComfyLauncher(instance_path / "comfyui.log", look_at[0], start_timeout_s=s.comfyui_start_timeout_s)
        discovery = ComfyDiscovery(look_at, launcher=launcher)
        # the model files' families, and what the person said a file is (kept beside the settings)
        self.catalog = ModelCatalog(instance_path / "models.json", s.comfyui_dir)
        self.pipeline = Pipeline(self._transcriber(s), self.prompt_writer, self.workflows, self.store, s,
                                 voices=self._voices(s), history=self.history, metrics=self.metrics,
                                 comfy_discovery=discovery, recover_wait_s=s.recover_wait_s, catalog=self.catalog)
        self.live = LiveTranscriber(lambda: self.transcriber)  # live recordings' passes, on the same model

    def init_app(self, app: Flask) -> None:
        app.extensions["speech2image"] = self
        # Worker threads stop with the app: when it is collected, or when the process exits.
        weakref.finalize(app, self.pipeline.shutdown)
        self._owner = claim_data_dir(self.path.parent)
        if self._owner is not None:
            weakref.finalize(app, self._owner.close)
            threading.Thread(target=self.recover, name="recover", daemon=True).start()
        else:
            log.warning("another speech2image uses %s: the jobs it has in flight are left to it",
                        self.path.parent)

    def recover(self) -> None:
        """The jobs a previous run left in flight carry on; prompts of ours in ComfyUI with no job are removed."""
        try:
            jobs = self.pipeline.recover()
            if jobs:
                log.info("recovering %d job(s) left in flight by the previous run", len(jobs))
            for url, prompts in self.pipeline.remove_orphans().items():
                log.warning("ComfyUI at %s had %d prompt(s) of ours that no job follows; removed them: %s", url,
                            len(prompts), ", ".join(f"{prompt} ({outcome})" for prompt, outcome in prompts.items()))
        except Exception:
            log.exception("recovering the jobs left in flight failed")

    # --- the components in use --------------------------------------------------------

    @property
    def transcriber(self) -> Transcriber | AsrPool:
        return self.pipeline.transcriber

    @property
    def voices(self) -> Voices:
        return self.pipeline.voices

    @property
    def comfy(self):
        return self.pipeline.comfy

    def _transcriber(self, s: Settings) -> Transcriber | AsrPool:
        """The Whisper models in this app, or the pool of SPEECH2IMAGE_ASR_URL (with them only if 'local' is listed)."""
        def local() -> Transcriber:
            return Transcriber(model=s.whisper_model, device=s.whisper_device, compute_type=s.whisper_compute_type,
                               language=s.language, max_audio_s=s.max_audio_s, models_dir=self.models_dir)

        servers = parse_speech_urls(s.asr_url)
        return AsrPool(servers, s, local) if servers else local()

    @staticmethod
    def _llm(s: Settings) -> LlmClient:
        return LlmClient(url=s.llm_url, model=s.llm_model, timeout_s=s.llm_timeout_s)

    @staticmethod
    def _voices(s: Settings) -> Voices:
        """The voice engines in this app; with SPEECH2IMAGE_TTS_URL, its pool speaks for the default engine."""
        options = (s.tts_engine, s.tts_voice, s.tts_coqui_model_path, s.tts_coqui_config_path)
        servers = parse_speech_urls(s.tts_url)
        pool = TtsPool(servers, s, lambda: Speaker(*options)) if servers else None
        return Voices(*options, servers=pool, voices_dir=s.tts_voices_dir)

    def start_loading(self) -> None:
        self.transcriber.start_loading(self.settings.language)
        self.voices.get().start_loading()
        # Look for ComfyUI now (and start the person's own if so set), not when the first job needs it.
        threading.Thread(target=lambda: self.comfy.clients, name="comfyui-finder", daemon=True).start()

    # --- what a person may set --------------------------------------------------------

    def knobs(self) -> list[dict]:
        """The table of knobs for the page and the settings answer, with our own choice lists filled in."""
        return [{**knob.describe(), "choices": self.choices_of(knob)} for knob in KNOBS.values()]

    @staticmethod
    def choices_of(knob: Knob):
        """A fixed list, our stages' list, or the name of the server list the page fills in."""
        return STAGE_CHOICES.get(knob.choices, knob.choices) if isinstance(knob.choices, str) else knob.choices

    def check(self, knob: Knob, value, scope: str, warnings: list[str] | None = None, live: bool = True):
        """One knob's value for a saved default (scope 'saved') or one job ('job'), or BadInput. With ``live``,
        a value whose choices come from a server is checked against what that server offers now; when it does
        not answer, the value is taken as it is and ``warnings`` says so."""
        choices = STAGE_CHOICES.get(knob.choices) if isinstance(knob.choices, str) else None
        try:
            value = knob.parse(value, scope, choices)
        except ValueError as exc:
            raise BadInput(str(exc), code=self._bad(knob, scope)) from exc
        if knob.name == "workflow" and value and scope == "saved":
            self.workflows.path(value)  # raises with the available names; a job's fails with the same words
        if live and value and knob.name == "comfyui_url":
            self._check_comfyui(value, scope, warnings)
        if live and value and knob.choices in SERVER_CHOICES:
            where, offered = SERVER_CHOICES[knob.choices](self)
            if offered is None and warnings is not None:
                warnings.append(f"'{knob.name}' was taken as '{value}' without a check: {where} did not answer")
            elif offered is not None and value not in offered:
                listed = ", ".join(offered[:40]) + (f" (and {len(offered) - 40} more)" if len(offered) > 40 else "")
                raise BadInput(f"'{knob.name}': {where} has no '{value}'; it offers {listed or 'none'}",
                               code=self._bad(knob, scope))
        if knob.name == "tts_engine" and scope == "job":
            self.voices.check(value)  # with voice servers, only an engine they speak
        return value

    @staticmethod
    def _check_comfyui(value: str, scope: str, warnings: list[str] | None) -> None:
        """A ComfyUI address that answers must be ComfyUI: another server there is refused with what it is
        (a job would fail later in words of the wrong protocol); one that does not answer yet is taken."""
        for url in parse_urls(value):
            found = probe(url, timeout_s=2.0)
            if found.version is None and found.answer.startswith("something that is not ComfyUI"):
                raise BadInput(f"'comfyui_url': {url} is not ComfyUI: {found.answer}. Check the address and port "
                               "(ComfyUI listens on 8188, ComfyUI Desktop on 8000)",
                               code="bad_setting" if scope == "saved" else "bad_comfyui_url")
            if found.version is None and warnings is not None:
                warnings.append(f"nothing answers as ComfyUI at {url} yet ({found.answer}); it was saved anyway")

    @staticmethod
    def _bad(knob: Knob, scope: str) -> str:
        return "bad_setting" if scope == "saved" else f"bad_{knob.job}"

    def job_overrides(self, values: dict) -> dict:
        """The settings one job overrides, keyed by setting name; form values arrive as text."""
        overrides = {}
        for field_name, knob in JOB_KNOBS.items():
            value = values.get(field_name)
            if value is not None and value != "":
                overrides[knob.name] = self.check(knob, value, "job", live=False)  # ComfyUI validates a job
        return overrides

    def source(self, name: str) -> str:
        """Where a setting's value in use comes from: environment, saved or default."""
        if name in self.from_environment:
            return "environment"
        return "saved" if name in self.saved else "default"

    def settings_view(self) -> dict:
        return {"settings": editable_view(self.settings), "defaults": editable_view(self.base),
                "sources": {name: self.source(name) for name in KNOBS}, "editable": list(KNOBS),
                "knobs": self.knobs()}

    def service_lines(self) -> list[str]:
        """One line per outside service: the address or model in use and where it comes from."""
        s = self.settings

        def line(label: str, name: str, value: str) -> str:
            source = self.source(name)
            where = f"set by {env_variable(name)}" if source == "environment" else source
            return f"{label}: {value} ({where})"

        llm = s.llm_url or f"looked for at {', '.join(self.llm.candidates())}"
        comfyui = s.comfyui_url or (f"looked for at {', '.join(parse_urls(s.comfyui_discover) or DISCOVERY_URLS)}"
                                    + (f", else started from {s.comfyui_dir}" if s.comfyui_dir else ""))
        voice = f"{s.tts_engine}, {s.tts_voice or 'its default voice'}"
        asr = line("Speech recognition servers", "asr_url", s.asr_url) if s.asr_url else \
            line("Whisper model", "whisper_model", s.whisper_model)
        tts = line("Voice servers", "tts_url", s.tts_url) if s.tts_url else line("Voice", "tts_engine", voice)
        return [line("ComfyUI", "comfyui_url", comfyui), line("LLM server", "llm_url", llm), asr, tts]

    # --- changing ---------------------------------------------------------------------

    def _current(self, saved: dict) -> Settings:
        """The settings in use: the environment wins over what was saved, which wins over the default."""
        return dataclasses.replace(self.base, **{n: v for n, v in saved.items() if n not in self.from_environment})

    def _load_saved(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            saved = self._clean(json.loads(self.path.read_text(encoding="utf-8")))
        except (ValueError, BadInput) as exc:
            log.error("ignoring %s: %s", self.path, getattr(exc, "message", exc))
            return {}
        return {name: value for name, value in saved.items() if value is not None}

    def _clean(self, changes, warnings: list[str] | None = None) -> dict:
        """Each change checked against its knob; None (JSON null) stands for 'back to the default'."""
        if not isinstance(changes, dict):
            raise BadInput("send the settings to change as a JSON object", code="bad_json")
        clean = {}
        for name, value in changes.items():
            if name not in KNOBS:
                raise BadInput(f"'{name}' is not a setting that can be changed here; settings: "
                               f"{', '.join(KNOBS)}", code="unknown_setting")
            clean[name] = None if value is None else self.check(KNOBS[name], value, "saved", warnings,
                                                                live=warnings is not None)
        if clean.get("whisper_model") == "":
            clean["whisper_model"] = "bundled"
        return clean

    def validate(self, changes, warnings: list[str] | None = None) -> dict:
        clean = self._clean(changes, warnings)
        for name in clean:
            if name in self.from_environment:
                raise BadInput(f"'{name}' is set by {env_variable(name)} for this run; change or unset it there "
                               "(a choice saved here is used on runs without it)", code="set_by_environment")
        return clean

    def update(self, changes: dict, warnings: list[str] | None = None) -> Settings:
        """Validate, persist and apply; only the components a change touches are rebuilt. ``warnings`` gets
        what was taken unchecked (its server did not answer)."""
        clean = self.validate(changes, warnings)
        with self._lock:
            saved = dict(self.saved)
            for name, value in clean.items():
                if value is None or value == getattr(self.base, name):
                    saved.pop(name, None)  # the default again: nothing to remember
                else:
                    saved[name] = value
            new = self._current(saved)
            changed = {name for name in clean if getattr(new, name) != getattr(self.settings, name)}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(saved, indent=2), encoding="utf-8")
            tmp.replace(self.path)
            self.saved, self.settings = saved, new
            rebuild = {KNOBS[name].rebuilds for name in changed}  # the pipeline rebuilds its ComfyUI pool itself
            transcriber = self._transcriber(new) if "asr" in rebuild else None
            voices = self._voices(new) if "tts" in rebuild else None
            if "llm" in rebuild:
                self.llm = self._llm(new)
                self.prompt_writer.use_client(self.llm)
            self.pipeline.configure(new, transcriber=transcriber, voices=voices)
            if transcriber is not None:
                transcriber.start_loading()
            elif "language" in changed:  # the models stay; the new default language's is loaded now
                self.transcriber.language = new.language
                self.transcriber.start_loading(new.language)
            if voices is not None:
                voices.get().start_loading()
        if changed:
            log.info("settings changed: %s", ", ".join(sorted(changed)))
        return new
