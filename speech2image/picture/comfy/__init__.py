"""ComfyUI: its wire format (``protocol``), one prompt's messages (``run``), one server (``client``),
several servers as one (``pool``), and the one on this computer when none is configured (``discovery``)."""
from .client import CLIENT_PREFIX, ComfyClient, RenderResult
from .discovery import (
                       DISCOVERY_URLS,
                       ComfyDiscovery,
                       Found,
                       Probe,
                       comfyui_version,
                       device_kind,
                       probe,
)
from .pool import ComfyPool, Rendered, ServerLoad, parse_urls
from .protocol import (
                       ComfyError,
                       ComfyUnavailable,
                       PromptLost,
                       RenderCancelled,
                       RenderedImage,
                       describe_validation_error,
                       parse_binary_frame,
)
from .run import ProgressTracker, PromptRun

__all__ = ["CLIENT_PREFIX", "DISCOVERY_URLS", "ComfyClient", "ComfyDiscovery", "ComfyError", "ComfyPool",
           "ComfyUnavailable", "Found", "Probe", "ProgressTracker", "PromptLost", "PromptRun", "RenderCancelled",
           "Rendered", "RenderedImage", "RenderResult", "ServerLoad", "comfyui_version", "describe_validation_error",
           "device_kind", "parse_binary_frame", "parse_urls", "probe"]
