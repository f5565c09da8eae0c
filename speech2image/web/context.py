"""The runtime of the app serving this request, for the web layer's modules."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from ..runtime import Runtime


def current_runtime() -> "Runtime":
    """The app's components and current settings, registered by create_app."""
    return current_app.extensions["speech2image"]
