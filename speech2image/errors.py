"""One error type for every failure a user can cause or meet.

Stages raise ``UserFacingError`` with a stable ``code`` and a message written for
the person at the page; the web layer turns it into ``{error: {code, message}}``
with ``status`` as the HTTP status. Nothing here imports Flask.
"""
from __future__ import annotations


def error_body(code: str, message: str) -> dict:
    """The one shape of every error we answer: ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


class UserFacingError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        return error_body(self.code, self.message)


class BadInput(UserFacingError):
    status = 400
    code = "bad_input"


class TooLarge(UserFacingError):
    status = 413
    code = "too_large"


class NoSpeech(UserFacingError):
    status = 422
    code = "no_speech"


class NotReady(UserFacingError):
    status = 503
    code = "not_ready"
