"""speech2image: say what you want to see, get a picture and a spoken caption."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask

from .asr import Transcriber
from .config import Settings
from .llm import LlmClient
from .pipeline import Pipeline, RenderDefaults
from .prompt_writer import PromptWriter
from .store import OutputStore
from .tts import Voices
from .workflows import WorkflowLibrary

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """App factory: settings from the environment, ``test_config`` overrides fields."""
    settings = Settings.from_env(**(test_config or {}))
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(level)  # it sets INFO on itself otherwise
    app = Flask(
        __name__,
        instance_path=os.path.abspath(settings.data_dir),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_upload_bytes, DEBUG=settings.debug)
    os.makedirs(app.instance_path, exist_ok=True)

    transcriber = Transcriber(
        model=settings.whisper_model,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        language=settings.whisper_language,
        max_audio_s=settings.max_audio_s,
    )
    app.extensions["speech2image.transcriber"] = transcriber
    llm = LlmClient(url=settings.llm_url, model=settings.llm_model, timeout_s=settings.llm_timeout_s)
    app.extensions["speech2image.llm"] = llm
    prompt_writer = PromptWriter(llm)
    app.extensions["speech2image.prompt_writer"] = prompt_writer
    workflows = WorkflowLibrary(PROJECT_ROOT / "workflows", Path(app.instance_path) / "workflows")
    app.extensions["speech2image.workflows"] = workflows
    store = OutputStore(Path(app.instance_path) / "outputs")
    app.extensions["speech2image.store"] = store
    defaults = RenderDefaults(
        comfyui_url=settings.comfyui_url, workflow=settings.workflow, checkpoint=settings.checkpoint,
        steps=settings.steps, cfg=settings.cfg, width=settings.width, height=settings.height, seed=settings.seed,
        render_timeout_s=settings.render_timeout_s,
    )
    voices = Voices(settings.tts_engine, settings.tts_voice, settings.tts_coqui_model_path,
                    settings.tts_coqui_config_path)
    app.extensions["speech2image.voices"] = voices
    app.extensions["speech2image.pipeline"] = Pipeline(transcriber, prompt_writer, workflows, store, defaults,
                                                       voices=voices)

    from .web import api, errors, live, pages

    errors.init_app(app)
    live.sock.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(live.bp)

    if settings.preload:
        transcriber.start_loading()
        voices.get().start_loading()
    return app
