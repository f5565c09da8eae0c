"""Which web server runs the app, and one line that says what is served where.

On this computer (a loopback HOST) Werkzeug's threaded server is right: one person, no
network. Exposed on a network (a token is then required), the app runs on gunicorn's
threaded worker, which serves flask-sock's websockets; one worker process, because the
jobs and each tab's event queue live in that process. Windows has no gunicorn: there the
app says so and stays on Werkzeug.
"""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.serving import make_server

from .config import Settings
from .web import is_loopback

log = logging.getLogger(__name__)
THREADS = 64  # every open page holds one for its websocket


SERVERS = ("auto", "werkzeug", "gunicorn")


def choose_server(settings: Settings) -> str:
    """werkzeug or gunicorn, for SPEECH2IMAGE_SERVER and the address; ValueError for an unknown name."""
    if settings.server not in SERVERS:
        raise ValueError(f"SPEECH2IMAGE_SERVER must be one of {', '.join(SERVERS)}, not {settings.server!r}")
    if settings.server != "auto":
        return settings.server
    return "werkzeug" if is_loopback(settings.host) else "gunicorn"


def address(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def serve(app: Flask, settings: Settings, server: str) -> None:
    """Serve with ``server`` (from choose_server) until interrupted."""
    if server == "gunicorn":
        try:
            import gunicorn.app.base  # noqa: F401  (not on Windows)
        except ImportError:
            log.warning("gunicorn is not installed here (it does not run on Windows); serving with Werkzeug's "
                        "development server instead, which is fine for a few people on a home network")
        else:
            return _gunicorn(app, settings)
    where = "this computer only" if is_loopback(settings.host) else "the network"
    log.info("speech2image is serving %s for %s (Flask's built-in server: right for one person on this computer)",
             address(settings), where)
    httpd = make_server(settings.host, settings.port, app, threaded=True)  # no development-server banner
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


def _gunicorn(app: Flask, settings: Settings) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            host = f"[{settings.host}]" if ":" in settings.host else settings.host
            for key, value in {"bind": f"{host}:{settings.port}", "workers": 1, "worker_class": "gthread",
                               "threads": THREADS, "timeout": 120, "graceful_timeout": 10,
                               "loglevel": settings.log_level.lower(), "accesslog": None}.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    log.info("speech2image is serving %s on the network with gunicorn (1 worker, %d threads); every page, API "
             "call and websocket needs the access token", address(settings), THREADS)
    Server().run()
