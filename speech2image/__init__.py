"""speech2image: say what you want to see, get a picture and a spoken caption."""
from __future__ import annotations

import logging
import mimetypes
import os
from pathlib import Path

from flask import Flask

from .config import Settings, environment_values, site_folder
from .runtime import Runtime

__version__ = "0.1.0"
log = logging.getLogger(__name__)

# The page's scripts are ES modules, which browsers refuse unless served with a JavaScript type.
# Flask takes a static file's type from this table, which on Windows the registry can override
# (.js as text/plain), so name it here.
mimetypes.add_type("text/javascript", ".js")


def create_app(test_config: dict | None = None) -> Flask:
    """App factory: settings from the environment, ``test_config`` overrides fields.

    Raises ``web.UnsafeBind`` for a network address without a token; configuring
    logging and exiting the process are ``app.py``'s business, not the factory's.
    """
    environment = environment_values()
    settings = Settings(**{**environment, **(test_config or {})})
    from . import web

    web.check_bind(settings.host, settings.token)
    app = Flask(
        __name__,
        instance_path=os.path.abspath(settings.data_dir),
        template_folder=str(site_folder("templates")),
        static_folder=str(site_folder("static")),
    )
    app.config.update(MAX_CONTENT_LENGTH=settings.max_upload_bytes, DEBUG=settings.debug)
    os.makedirs(app.instance_path, exist_ok=True)

    runtime = Runtime(settings, Path(app.instance_path), site_folder("workflows"),
                      from_environment=frozenset(environment) - set(test_config or {}))
    runtime.init_app(app)
    for line in runtime.service_lines():
        log.info("%s", line)
    web.init_app(app)

    if settings.preload:
        runtime.start_loading()
    return app
