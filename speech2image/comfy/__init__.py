"""ComfyUI: its wire format (``protocol``), one server (``client``), several as one (``pool``), and
the one on this computer when none is configured (``discovery``)."""
from .client import ComfyClient, ProgressTracker, RenderResult
from .discovery import DISCOVERY_URLS, ComfyDiscovery, Found, Probe, comfyui_version, device_kind, probe
from .pool import ComfyPool, Rendered, ServerLoad, parse_urls
from .protocol import (ComfyError, ComfyUnavailable, RenderCancelled, RenderedImage, describe_validation_error,
                       parse_binary_frame)

__all__ = ["DISCOVERY_URLS", "ComfyClient", "ComfyDiscovery", "ComfyError", "ComfyPool", "Found", "Probe",
           "comfyui_version", "device_kind", "probe", "ComfyUnavailable", "ProgressTracker", "RenderCancelled",
           "Rendered", "RenderedImage", "RenderResult", "ServerLoad", "describe_validation_error", "parse_binary_frame",
           "parse_urls"]
