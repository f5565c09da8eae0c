"""ComfyUI: its wire format (``protocol``), one prompt's messages (``run``), one server (``client``),
several servers as one (``pool``)."""
from .client import ComfyClient, RenderResult
from .pool import ComfyPool, Rendered, ServerLoad, parse_urls
from .protocol import (ComfyError, ComfyUnavailable, RenderCancelled, RenderedImage, describe_validation_error,
                       parse_binary_frame)
from .run import ProgressTracker, PromptRun

__all__ = ["ComfyClient", "ComfyError", "ComfyPool", "ComfyUnavailable", "ProgressTracker", "PromptRun",
           "RenderCancelled", "Rendered", "RenderedImage", "RenderResult", "ServerLoad", "describe_validation_error",
           "parse_binary_frame", "parse_urls"]
