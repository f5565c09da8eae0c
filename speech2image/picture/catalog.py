"""The model files of the person's ComfyUI, with their families, and the person's word on them.

Checkpoints and diffusion models (``models/diffusion_models`` and the older ``models/unet``) are
listed through ComfyUI's stock endpoints, LoRAs from ``models/loras``. Each file's kind is detected
once (``detect``): from its metadata through ``/view_metadata``, or, when the ComfyUI folder is known
here (we started it, or it is configured), from the file's own header, read without loading weights.
A detection is kept per file (name, and size and date where the folder can be read). What the person
says a file is (``remember``) is kept in the data folder and wins over any evidence.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .comfy.protocol import ComfyError, ComfyUnavailable
from .detect import ModelInfo, detect, read_header
from .families import DIFFUSION_FOLDERS, FAMILIES, VARIANTS
from .graphs import companions, needed_loaders
from .prepare import RenderJob, ServerFacts, choose_model
from .workflows import Workflow

log = logging.getLogger(__name__)

LISTING_TTL_S = 5.0  # a job's prompt and its render ask within seconds: one listing serves both
MAX_WORKERS = 8  # files whose metadata is asked for at once


class ModelCatalog:
    """Shared by every ComfyUI server of the app; safe to use from several threads."""

    def __init__(self, choices_path: Path | None = None, comfyui_dir: str = "", metadata_timeout_s: float = 2.0):
        self.choices_path = Path(choices_path) if choices_path else None
        self.comfyui_dir = comfyui_dir
        self.metadata_timeout_s = metadata_timeout_s
        self._lock = threading.Lock()
        self._detected: dict[tuple, ModelInfo] = {}
        self._listings: dict[tuple[str, str], tuple[float, tuple[ModelInfo, ...]]] = {}
        self._choices = self._load_choices()
        self._render_s: dict[str, float] = {}  # model -> seconds ComfyUI last took to draw a full picture with it

    def configure(self, comfyui_dir: str) -> None:
        """The ComfyUI folder this app may read (SPEECH2IMAGE_COMFYUI_DIR), or '' for none."""
        if comfyui_dir != self.comfyui_dir:
            self.comfyui_dir = comfyui_dir
            self.forget()

    def forget(self) -> None:
        with self._lock:
            self._listings.clear()

    def timed(self, used: dict, seconds: float) -> None:
        """A full render (not a sketch) with ``used``'s model took ``seconds`` from its start in ComfyUI."""
        if isinstance(used.get("checkpoint"), str):
            with self._lock:
                self._render_s[used["checkpoint"]] = seconds

    def render_seconds(self, model: str | None) -> float | None:
        """How long the last full render with ``model`` took in ComfyUI; None when none was timed."""
        with self._lock:
            return self._render_s.get(model) if model else None

    # --- the person's word on a file --------------------------------------------------

    def _load_choices(self) -> dict:
        if self.choices_path is None or not self.choices_path.is_file():
            return {}
        try:
            data = json.loads(self.choices_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            log.error("ignoring %s: %s", self.choices_path, exc)
            return {}
        files = data.get("files") if isinstance(data, dict) else None
        return {name: choice for name, choice in (files or {}).items()
                if isinstance(choice, dict) and choice.get("family") in FAMILIES}

    @property
    def choices(self) -> dict:
        with self._lock:
            return dict(self._choices)

    def remember(self, name: str, family: str | None, variant: str | None = None) -> None:
        """What the person says a file is (None: forget it and detect again); kept in the data folder."""
        if family is not None and family not in FAMILIES:
            raise ValueError(f"'{family}' is not a family; families: {', '.join(FAMILIES)}")
        if variant is not None and variant not in VARIANTS:
            raise ValueError(f"'{variant}' is not a variant; variants: {', '.join(VARIANTS)}")
        with self._lock:
            if family is None:
                self._choices.pop(name, None)
            else:
                self._choices[name] = {"family": family, "variant": variant}
            self._listings.clear()
            if self.choices_path is not None:
                self.choices_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.choices_path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"files": self._choices}, indent=2), encoding="utf-8")
                tmp.replace(self.choices_path)
        log.info("model %s: %s", name, f"the person says {family} {variant or ''}".strip() if family else
                 "the person's choice forgotten")

    # --- one file ---------------------------------------------------------------------

    def local_path(self, folder: str, name: str) -> Path | None:
        """Where a file of the server's lies in the ComfyUI folder we know, when it is there."""
        if not self.comfyui_dir or ".." in Path(name).parts or Path(name).is_absolute():
            return None
        models = Path(self.comfyui_dir).expanduser() / "models"
        folders = DIFFUSION_FOLDERS if folder in DIFFUSION_FOLDERS else (folder,)
        return next((models / f / name for f in folders if (models / f / name).is_file()), None)

    def describe(self, url: str, folder: str, name: str, metadata_of=None) -> ModelInfo:
        """One file, detected once: from its header when the folder is readable here, else from its
        metadata as ``metadata_of(folder, name)`` (the server's /view_metadata) gives it, else its name."""
        path = self.local_path(folder, name)
        stat = path.stat() if path is not None else None
        key = (str(path), stat.st_size, stat.st_mtime_ns) if stat else (url, folder, name)
        with self._lock:
            known = self._detected.get(key)
        if known is None:
            known = self._detect(folder, name, path, metadata_of)
            if known is not None:
                with self._lock:
                    self._detected[key] = known
            else:  # the server did not say: the name decides this time, the file is asked again next time
                known = detect(name, folder)
        return known.chosen(self.choices.get(name))

    def _detect(self, folder: str, name: str, path: Path | None, metadata_of) -> ModelInfo | None:
        if path is not None:
            header = read_header(path)
            return detect(name, folder, *header) if header else detect(name, folder)
        if metadata_of is None:
            return detect(name, folder)
        try:
            return detect(name, folder, metadata_of(folder, name))
        except ComfyError as exc:
            log.info("the metadata of %s/%s could not be read: %s", folder, name, exc.message)
            return None

    # --- a server's files -------------------------------------------------------------

    def _listing(self, client, kind: str, fetch) -> tuple[ModelInfo, ...]:
        key = (client.base_url, kind)
        with self._lock:
            cached = self._listings.get(key)
        if cached and time.monotonic() - cached[0] < LISTING_TTL_S:
            return cached[1]
        files = fetch()
        metadata_of = lambda folder, name: client.file_metadata(folder, name, self.metadata_timeout_s)  # noqa: E731
        ask = lambda item: self.describe(client.base_url, item[0], item[1], metadata_of)  # noqa: E731
        if len(files) > 1:
            with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(files))) as pool:
                found = tuple(pool.map(ask, files))
        else:
            found = tuple(map(ask, files))
        with self._lock:
            self._listings[key] = (time.monotonic(), found)
        return found

    def models(self, client) -> tuple[ModelInfo, ...]:
        """The checkpoints, then the diffusion models, each with its family."""
        def fetch():
            files = [("checkpoints", name) for name in client.checkpoints()]
            seen = {name for _, name in files}
            for folder in DIFFUSION_FOLDERS:
                for name in client.model_files(folder):
                    if name not in seen:
                        seen.add(name)
                        files.append((folder, name))
            return files
        return self._listing(client, "models", fetch)

    def loras(self, client) -> tuple[ModelInfo, ...]:
        """The LoRAs, each with the family it was made for and its trigger words."""
        return self._listing(client, "loras", lambda: [("loras", name) for name in client.model_files("loras")])

    # --- for a job --------------------------------------------------------------------

    def _models_for(self, client, workflow: Workflow) -> tuple[ModelInfo, ...] | None:
        """The server's models when the workflow loads one; None when it cannot say."""
        if workflow.roles.checkpoint is None:
            return None
        try:
            return self.models(client)
        except ComfyUnavailable:
            raise
        except ComfyError as exc:
            log.info("ComfyUI at %s could not list its models: %s", client.base_url, exc.message)
            return None

    def model_for(self, client, workflow: Workflow, requested: str | None) -> ModelInfo | None:
        """The model a new picture of this workflow would be drawn with on this server (for the prompt's
        dialect); None when that cannot be told now. Never raises."""
        try:
            return choose_model(workflow, requested, self._models_for(client, workflow), True, self.choices)[0]
        except ComfyError as exc:
            log.info("the model for the prompt could not be told: %s", exc.message)
            return None

    def facts(self, client, job: RenderJob, image: str | None) -> ServerFacts:
        """What ``graph_for`` needs from this server for this job."""
        workflow, params, choices = job.workflow, job.params, self.choices
        models = self._models_for(client, workflow)
        loaders = {}
        if workflow.shipped:
            model, _ = choose_model(workflow, params.checkpoint, models, params.image_data is None, choices)
            for node_class in needed_loaders(model):
                try:
                    loaders[node_class] = client.node_inputs(node_class)
                except ComfyUnavailable:
                    raise
                except ComfyError:
                    loaders[node_class] = {}
        loras = None
        if params.loras:
            try:
                loras = self.loras(client)
            except ComfyUnavailable:
                raise
            except ComfyError as exc:
                log.info("ComfyUI at %s could not list its LoRAs: %s", client.base_url, exc.message)
        return ServerFacts(client.base_url, models, image, loaders, loras, choices)

    def companion_problems(self, client) -> dict[str, str]:
        """Each diffusion model of the server that lacks a file it is loaded with (text encoders, VAE),
        with what to put where; {} when every one has what it needs."""
        problems, loaders = {}, {}
        for model in self.models(client):
            for node_class in needed_loaders(model):
                if node_class not in loaders:
                    loaders[node_class] = client.node_inputs(node_class)
            if model.diffusion_model:
                try:
                    companions(model, loaders)
                except ComfyError as exc:
                    problems[model.name] = exc.message
        return problems
