"""The web layer: translates HTTP and websocket requests into calls on the runtime, nothing more.

``pages`` serves the page and the outputs, ``api`` the JSON API, ``live`` the websockets (a job's
events, a recording streamed while it is spoken), ``security`` the bind rule, the token and the CSP,
``errors`` one JSON body for every failure; ``context`` finds the runtime of the app in a request.
"""
from __future__ import annotations

from flask import Flask

from . import api, errors, live, pages, security
from .security import UnsafeBind, check_bind, is_loopback

__all__ = ["UnsafeBind", "check_bind", "init_app", "is_loopback"]


def init_app(app: Flask) -> None:
    """The error handlers, the guard, the websockets and the blueprints, on ``app``."""
    errors.init_app(app)
    security.init_app(app)
    live.sock.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(live.bp)
