"""HTTP and websocket layer: translates requests into pipeline calls, nothing more."""
from flask import current_app


def service(name: str):
    """The app-wide service registered by create_app under ``speech2image.<name>``."""
    return current_app.extensions[f"speech2image.{name}"]
