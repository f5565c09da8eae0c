"""Every error on an API route is JSON ``{error: {code, message}}``, never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import UserFacingError, error_body
from .context import current_runtime

log = logging.getLogger(__name__)


def is_api_request() -> bool:
    """Answered in JSON (scripts, the page's fetches, the relay), not as an HTML page."""
    return request.path.startswith("/api/") or request.path in ("/ws", "/ws/audio")


def json_error(status: int, code: str, message: str):
    return jsonify(error_body(code, message)), status


def init_app(app: Flask) -> None:
    @app.errorhandler(UserFacingError)
    def user_facing(exc: UserFacingError):
        log.info("%s %s -> %s %s: %s", request.method, request.path, exc.status, exc.code, exc.message)
        return json_error(exc.status, exc.code, exc.message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        limit_mb = current_runtime().settings.max_upload_mb
        log.info("%s %s -> 413 upload over %s MB", request.method, request.path, limit_mb)
        return json_error(413, "upload_too_large", f"the upload is larger than the limit of {limit_mb:g} MB")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not is_api_request():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        return json_error(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        message = "something went wrong on the server; the log has the details"
        if is_api_request():
            return json_error(500, "internal_error", message)
        return message, 500
