"""Every error on an API route is JSON ``{error: {code, message}}``, never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import UserFacingError

log = logging.getLogger(__name__)


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _json_error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status


def init_app(app: Flask) -> None:
    @app.errorhandler(UserFacingError)
    def user_facing(exc: UserFacingError):
        log.info("%s %s -> %s %s: %s", request.method, request.path, exc.status, exc.code, exc.message)
        return _json_error(exc.status, exc.code, exc.message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        limit_mb = app.config["SETTINGS"].max_upload_mb
        log.info("%s %s -> 413 upload over %s MB", request.method, request.path, limit_mb)
        return _json_error(413, "upload_too_large", f"the upload is larger than the limit of {limit_mb:g} MB")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not _is_api():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        return _json_error(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        message = "something went wrong on the server; the log has the details"
        if _is_api():
            return _json_error(500, "internal_error", message)
        return message, 500
