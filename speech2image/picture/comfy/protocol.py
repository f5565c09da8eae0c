"""ComfyUI's wire format: what its HTTP and websocket messages look like, and our errors.

Built from what a real ComfyUI 0.3.64 sends: the traces and notes in
``tests/comfyui_traces/`` (PROTOCOL.md there) are the reference, and the fake ComfyUI the
tests run replays them. Binary websocket frames start with a big-endian u32 event type;
previews come as type 1 (or 4 with metadata once we send the feature flag).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from ...errors import UserFacingError

START_HINT = (
    "Start ComfyUI (for example `python main.py --listen 127.0.0.1 --port 8188 --preview-method auto`) "
    "or set SPEECH2IMAGE_COMFYUI_URL to where it runs."
)
PREVIEW_HINT = "No live preview: start ComfyUI with --preview-method auto to see the picture form."
PREVIEW_MIME = {1: "image/jpeg", 2: "image/png"}
# Loader inputs whose values are files of a model folder: what a person calls the file, and the folder.
FILE_INPUTS = {"unet_name": ("diffusion model", "diffusion_models"), "lora_name": ("LoRA", "loras"),
               "vae_name": ("VAE", "vae"), "clip_name": ("text encoder", "text_encoders")}


class ComfyError(UserFacingError):
    status = 502
    code = "comfyui_error"


class ComfyUnavailable(ComfyError):
    status = 503
    code = "comfyui_unreachable"
    after_submit: bool  # set (no default) once the server had our prompt; readers use getattr(..., False)


class PromptLost(ComfyError):
    """ComfyUI has no trace of a prompt we had submitted: not queued, not running, not in its
    history (it restarted, or its queue was cleared while nobody followed it)."""

    code = "comfyui_dropped"


class RenderCancelled(UserFacingError):
    status = 409
    code = "cancelled"


@dataclass
class RenderedImage:
    data: bytes
    filename: str
    subfolder: str
    kind: str  # ComfyUI's folder type: output or temp


def parse_binary_frame(data: bytes) -> dict | None:
    """Binary frames: big-endian u32 event type, then per type (PROTOCOL.md)."""
    if len(data) < 8:
        return None
    (event,) = struct.unpack(">I", data[:4])
    if event == 1:  # PREVIEW_IMAGE: u32 format, image
        (fmt,) = struct.unpack(">I", data[4:8])
        return {"kind": "preview", "mime": PREVIEW_MIME.get(fmt, "image/jpeg"), "image": data[8:], "meta": {}}
    if event == 4:  # PREVIEW_IMAGE_WITH_METADATA: u32 length, JSON, image
        (length,) = struct.unpack(">I", data[4:8])
        try:
            meta = json.loads(data[8 : 8 + length])
        except (ValueError, UnicodeDecodeError):
            return None
        return {"kind": "preview", "mime": meta.get("image_type", "image/jpeg"), "image": data[8 + length :], "meta": meta}
    if event == 3:  # TEXT: u32 node-id length, node id, text
        (length,) = struct.unpack(">I", data[4:8])
        return {"kind": "text", "node": data[8 : 8 + length].decode("utf-8", "replace"),
                "text": data[8 + length :].decode("utf-8", "replace")}
    return None


def describe_validation_error(body: dict) -> str:
    """A 400 from POST /prompt, in words a person can act on."""
    error = body["error"] if isinstance(body.get("error"), dict) else {}
    parts = []
    for node_id, node_error in (body.get("node_errors") or {}).items():
        class_type = node_error.get("class_type", "node")
        for item in node_error.get("errors", []):
            extra = item.get("extra_info") or {}
            if item.get("type") == "value_not_in_list" and extra.get("input_name") == "ckpt_name":
                available = (extra.get("input_config") or [[]])[0]
                parts.append(f"checkpoint '{extra.get('received_value')}' is not in ComfyUI; available: "
                             + (", ".join(available) if available else "none (put a model in ComfyUI/models/checkpoints)"))
            elif item.get("type") == "value_not_in_list" and str(extra.get("input_name")).rstrip("1234") in FILE_INPUTS:
                what, folder = FILE_INPUTS[str(extra["input_name"]).rstrip("1234")]
                parts.append(f"{what} '{extra.get('received_value')}' is not in ComfyUI (put it in ComfyUI/models/{folder})")
            elif item.get("type") == "value_not_in_list":
                parts.append(f"{class_type} (node {node_id}): {item.get('details') or item.get('message')}")
            elif item.get("type") == "custom_validation_failed" and "Invalid image file" in str(item.get("details")):
                parts.append(f"it cannot find the picture to change ({class_type}, node {node_id}: "
                             f"{str(item['details']).split(' - ', 1)[-1]}); was it removed from ComfyUI's input folder?")
            elif item.get("type") == "required_input_missing":
                parts.append(f"{class_type} (node {node_id}) is missing its required input '{item.get('details')}'")
            else:
                detail = f": {item['details']}" if item.get("details") else ""
                parts.append(f"{class_type} (node {node_id}): {item.get('message', 'invalid')}{detail}")
    if not parts:
        message = error.get("message") or "the workflow was refused"
        if "does not exist" in message:
            message += " A custom node may be missing: install it in ComfyUI (ComfyUI-Manager helps)."
        parts.append(message)
    return "ComfyUI refused the workflow: " + "; ".join(parts)
