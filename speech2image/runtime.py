"""Settings a person changes on the page, and the components built from them.

Defaults come from the environment (``Settings.from_env``); changes made on the page
are validated, saved in ``settings.json`` in the instance folder (so they survive a
restart) and applied at once by rebuilding only the components they touch.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from pathlib import Path

from flask import Flask

from .asr import Transcriber
from .config import Settings
from .errors import BadInput
from .llm import LlmClient
from .metrics import Metrics
from .pipeline import Pipeline, RenderDefaults
from .prompt_writer import PRESETS, PromptWriter
from .store import JobHistory, OutputStore
from .tts import ENGINES, Voices
from .workflows import WorkflowLibrary

log = logging.getLogger(__name__)

# What the page may change, with the check each value must pass.
EDITABLE = {
    "llm_url": str, "llm_model": str, "llm_preset": str,
    "comfyui_url": str, "workflow": str, "checkpoint": str,
    "steps": int, "cfg": float, "width": int, "height": int, "seed": int,
    "whisper_model": str, "tts_engine": str, "tts_voice": str,
}
RANGES = {"steps": (0, 200), "cfg": (0.0, 30.0), "width": (0, 4096), "height": (0, 4096), "seed": (-1, 2**53 - 1)}
URL = re.compile(r"^https?://[\w.\-\[\]:]+(/[\w./\-]*)?$")
GROUPS = {
    "asr": {"whisper_model"},
    "llm": {"llm_url", "llm_model"},
    "tts": {"tts_engine", "tts_voice"},
    "render": {"comfyui_url", "workflow", "checkpoint", "steps", "cfg", "width", "height", "seed"},
}


def editable_view(settings: Settings) -> dict:
    return {name: getattr(settings, name) for name in EDITABLE}


class Runtime:
    def __init__(self, app: Flask, base: Settings):
        self.app = app
        self.base = base
        self.path = Path(app.instance_path) / "settings.json"
        self._lock = threading.Lock()
        self.workflows = WorkflowLibrary(Path(app.root_path).parent / "workflows", Path(app.instance_path) / "workflows")
        self.settings = dataclasses.replace(base, **self._saved_overrides())
        s = self.settings
        self.store = OutputStore(Path(app.instance_path) / "outputs")
        self.history = JobHistory(Path(app.instance_path) / "speech2image.db")
        self.metrics = Metrics()
        self.transcriber = self._transcriber(s)
        self.llm = self._llm(s)
        self.prompt_writer = PromptWriter(self.llm)
        self.voices = self._voices(s)
        self.pipeline = Pipeline(self.transcriber, self.prompt_writer, self.workflows, self.store,
                                 self._render_defaults(s), voices=self.voices, history=self.history,
                                 metrics=self.metrics, max_jobs_per_session=s.max_jobs_per_session)
        self._publish()

    # --- building -------------------------------------------------------------------

    @staticmethod
    def _transcriber(s: Settings) -> Transcriber:
        return Transcriber(model=s.whisper_model, device=s.whisper_device, compute_type=s.whisper_compute_type,
                           language=s.whisper_language, max_audio_s=s.max_audio_s)

    @staticmethod
    def _llm(s: Settings) -> LlmClient:
        return LlmClient(url=s.llm_url, model=s.llm_model, timeout_s=s.llm_timeout_s)

    @staticmethod
    def _voices(s: Settings) -> Voices:
        return Voices(s.tts_engine, s.tts_voice, s.tts_coqui_model_path, s.tts_coqui_config_path)

    @staticmethod
    def _render_defaults(s: Settings) -> RenderDefaults:
        return RenderDefaults(comfyui_url=s.comfyui_url, workflow=s.workflow, checkpoint=s.checkpoint, steps=s.steps,
                              cfg=s.cfg, width=s.width, height=s.height, seed=s.seed,
                              render_timeout_s=s.render_timeout_s)

    def _publish(self) -> None:
        ext = self.app.extensions
        ext["speech2image.runtime"] = self
        ext["speech2image.transcriber"] = self.transcriber
        ext["speech2image.llm"] = self.llm
        ext["speech2image.prompt_writer"] = self.prompt_writer
        ext["speech2image.voices"] = self.voices
        ext["speech2image.workflows"] = self.workflows
        ext["speech2image.store"] = self.store
        ext["speech2image.history"] = self.history
        ext["speech2image.metrics"] = self.metrics
        ext["speech2image.pipeline"] = self.pipeline

    def start_loading(self) -> None:
        self.transcriber.start_loading()
        self.voices.get().start_loading()

    # --- changing ---------------------------------------------------------------------

    def _saved_overrides(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            return self.validate(json.loads(self.path.read_text(encoding="utf-8")))
        except (ValueError, BadInput) as exc:
            log.error("ignoring %s: %s", self.path, getattr(exc, "message", exc))
            return {}

    def validate(self, changes) -> dict:
        if not isinstance(changes, dict):
            raise BadInput("send the settings to change as a JSON object", code="bad_json")
        clean = {}
        for name, value in changes.items():
            if name not in EDITABLE:
                raise BadInput(f"'{name}' is not a setting that can be changed here; settings: "
                               f"{', '.join(EDITABLE)}", code="unknown_setting")
            kind = EDITABLE[name]
            if kind is str:
                if not isinstance(value, str) or len(value) > 500:
                    raise BadInput(f"'{name}' must be text", code="bad_setting")
                value = value.strip()
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
                    raise BadInput(f"'{name}' must be a {'whole ' if kind is int else ''}number", code="bad_setting")
                low, high = RANGES[name]
                if not low <= value <= high:
                    raise BadInput(f"'{name}' must be from {low} to {high}", code="bad_setting")
                value = kind(value)
            clean[name] = value
        if "comfyui_url" in clean and not all(URL.match(u.strip()) for u in clean["comfyui_url"].split(",")):
            raise BadInput("'comfyui_url' must look like http://127.0.0.1:8188 (several: comma-separated)",
                           code="bad_setting")
        if clean.get("llm_url") not in (None, "", "off") and not URL.match(clean["llm_url"]):
            raise BadInput("'llm_url' must be empty (find one), 'off', or look like http://localhost:1234/v1",
                           code="bad_setting")
        if "llm_preset" in clean and clean["llm_preset"] not in PRESETS:
            raise BadInput(f"'llm_preset' must be one of {', '.join(PRESETS)}", code="bad_setting")
        if "tts_engine" in clean and clean["tts_engine"] not in ENGINES:
            raise BadInput(f"'tts_engine' must be one of {', '.join(ENGINES)}", code="bad_setting")
        if "workflow" in clean:
            self.workflows.path(clean["workflow"])  # raises with the available names
        if clean.get("whisper_model") == "":
            clean["whisper_model"] = "bundled"
        return clean

    def update(self, changes: dict) -> Settings:
        """Validate, persist and apply; only the components a change touches are rebuilt."""
        clean = self.validate(changes)
        with self._lock:
            new = dataclasses.replace(self.settings, **clean)
            changed = {name for name in clean if getattr(new, name) != getattr(self.settings, name)}
            saved = {n: v for n, v in editable_view(new).items() if v != getattr(self.base, n)}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(saved, indent=2), encoding="utf-8")
            tmp.replace(self.path)
            self.settings = new
            if changed & GROUPS["asr"]:
                self.transcriber = self._transcriber(new)
                self.pipeline.transcriber = self.transcriber
                self.transcriber.start_loading()
            if changed & GROUPS["llm"]:
                self.llm = self._llm(new)
                self.prompt_writer.client = self.llm
            if changed & GROUPS["tts"]:
                self.voices = self._voices(new)
                self.pipeline.voices = self.voices
                self.voices.get().start_loading()
            if changed & GROUPS["render"]:
                self.pipeline.defaults = self._render_defaults(new)
            self._publish()
        if changed:
            log.info("settings changed: %s", ", ".join(sorted(changed)))
        return new
