"""ComfyUI: its wire format (``protocol``), one server (``client``), several as one (``pool``)."""
from .client import ComfyClient, ProgressTracker, RenderResult
from .pool import ComfyPool, Rendered, ServerLoad, parse_urls
from .protocol import (ComfyError, ComfyUnavailable, RenderCancelled, RenderedImage, describe_validation_error,
                       parse_binary_frame)

__all__ = ["ComfyClient", "ComfyError", "ComfyPool", "ComfyUnavailable", "ProgressTracker", "RenderCancelled",
           "Rendered", "RenderedImage", "RenderResult", "ServerLoad", "describe_validation_error", "parse_binary_frame",
           "parse_urls"]
