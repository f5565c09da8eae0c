"""ComfyUI: its wire format (``protocol``), one prompt's messages (``run``), one server (``client``),
several servers as one (``pool``)."""
from .client import CLIENT_PREFIX, ComfyClient, RenderResult
from .pool import ComfyPool, Rendered, ServerLoad, parse_urls
from .protocol import (ComfyError, ComfyUnavailable, PromptLost, RenderCancelled, RenderedImage,
                       describe_validation_error, parse_binary_frame)
from .run import ProgressTracker, PromptRun

__all__ = ["CLIENT_PREFIX", "ComfyClient", "ComfyError", "ComfyPool", "ComfyUnavailable", "ProgressTracker",
           "PromptLost", "PromptRun", "RenderCancelled", "Rendered", "RenderedImage", "RenderResult", "ServerLoad",
           "describe_validation_error", "parse_binary_frame", "parse_urls"]
