"""The picture stage: a prompt in, a picture out, rendered by the person's ComfyUI.

``workflows`` loads API-format ComfyUI graphs, finds the nodes to fill (their roles) and fills them;
``img2img`` turns a text-to-image graph into the form that changes a picture, and back; ``families``
is the table of model families (their recipes, graphs and prompt dialects), ``detect`` tells which
family a file is, ``catalog`` lists a server's models with their families, ``graphs`` builds each
family's graph from stock nodes; ``comfy`` is ComfyUI itself: its wire format, one server, several
servers as one, the one on this computer, and starting it when none runs.
"""
from .catalog import ModelCatalog
from .comfy import (
                    CLIENT_PREFIX,
                    DISCOVERY_URLS,
                    ComfyClient,
                    ComfyDiscovery,
                    ComfyError,
                    ComfyPool,
                    ComfyUnavailable,
                    Probe,
                    PromptLost,
                    RenderCancelled,
                    Rendered,
                    ServerLoad,
                    device_kind,
                    parse_urls,
                    probe,
)
from .comfy.discovery import MISS_HINT, launch_address
from .comfy.launcher import ComfyLauncher
from .comfy.protocol import START_HINT
from .detect import ModelInfo, detect, read_header
from .families import (
                    FAMILIES,
                    MODEL_FOLDERS,
                    VARIANTS,
                    Dialect,
                    dialect_for,
                    recipe_for,
)
from .img2img import img2img_form, txt2img_form
from .prepare import Edit, RenderJob, ServerFacts, graph_for, render_job
from .workflows import (
                    RenderParams,
                    Workflow,
                    WorkflowError,
                    WorkflowLibrary,
                    fill,
                    load_workflow,
)

__all__ = ["CLIENT_PREFIX", "DISCOVERY_URLS", "FAMILIES", "MISS_HINT", "MODEL_FOLDERS", "START_HINT", "VARIANTS",
           "ComfyClient", "ComfyDiscovery", "ComfyError", "ComfyLauncher", "ComfyPool", "ComfyUnavailable", "Dialect",
           "Edit", "ModelCatalog", "ModelInfo", "Probe", "PromptLost", "RenderCancelled", "RenderParams", "RenderJob",
           "Rendered", "ServerFacts", "ServerLoad", "Workflow", "WorkflowError", "WorkflowLibrary", "detect",
           "device_kind", "dialect_for", "fill", "graph_for", "img2img_form", "launch_address", "load_workflow", "parse_urls", "probe",
           "read_header", "recipe_for", "render_job", "txt2img_form"]
