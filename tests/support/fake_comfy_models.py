"""The fake ComfyUI's model folders, as a real ComfyUI 0.3.64 answers for them
(tests/comfyui_traces/object_info_loaders.json and models_endpoints.json):

- ``GET /models`` names the folders; ``GET /models/{folder}`` lists a folder's files (a folder ComfyUI
  does not have is a bare 404; ``unet`` is not one of its names: its files are listed as diffusion_models);
- ``GET /view_metadata/{folder}?filename=`` answers a safetensors file's ``__metadata__``, and 404 when
  it has none, is not in the folder, or the folder is unknown;
- ``GET /object_info/<Loader>`` describes the loaders with the files of their folders (the lists of
  the recorded answers replaced by this fake's), in the recorded form: a plain list of values, or
  ``["COMBO", {"options": [...]}]`` for the newer nodes (TripleCLIPLoader, QuadrupleCLIPLoader);
- a loader given a file that is not in its folder fails validation (``value_not_in_list``), and a file
  the knobs name in ``unloadable`` (a placeholder of a few KB) fails when its loader runs, with the
  ``execution_error`` a real ComfyUI sent for a placeholder VAE (the first loader it runs).
"""
from __future__ import annotations

import copy
import json

from flask import Response, jsonify, request

from .data import ROOT

TRACES = ROOT / "tests" / "comfyui_traces"
LOADERS = json.loads((TRACES / "object_info_loaders.json").read_text())
RECORDED = json.loads((TRACES / "models_endpoints.json").read_text())
FOLDERS = RECORDED["GET /models"]
LOAD_ERROR = RECORDED["placeholder_load_error"]
FOLDER_OF = {"ckpt_name": "checkpoints", "unet_name": "diffusion_models", "lora_name": "loras", "vae_name": "vae",
             "clip_name": "text_encoders", "clip_name1": "text_encoders", "clip_name2": "text_encoders",
             "clip_name3": "text_encoders", "clip_name4": "text_encoders"}
VAE_EXTRA = ["pixel_space"]  # VAELoader offers it beside the files (and the TAESD decoders when present)


class ModelFolders:
    """Mixed into FakeComfyUI: the knobs hold each folder's files and their metadata."""

    def folder_files(self, folder: str) -> list[str] | None:
        """A folder's files, None for a folder this ComfyUI does not have."""
        if folder not in FOLDERS:
            return None
        return list(getattr(self.knobs, folder, None) or [])

    def model_routes(self, app) -> None:
        @app.get("/models")
        def model_folders():
            return jsonify(FOLDERS)

        @app.get("/models/<folder>")
        def model_files(folder):
            files = self.folder_files(folder)
            return Response(status=404) if files is None else jsonify(files)

        @app.get("/view_metadata/<folder>")
        def view_metadata(folder):
            name = request.args.get("filename", "")
            self.metadata_asked.append((folder, name))
            metadata = self.knobs.metadata.get(f"{folder}/{name}")
            if name not in (self.folder_files(folder) or []) or not metadata:
                return Response(status=404)
            return jsonify(metadata)

    def loader_info(self, node_class: str) -> dict | None:
        """/object_info for a loader, with this fake's files; None when it is not a loader we describe."""
        if node_class not in LOADERS or node_class in self.knobs.missing_classes:
            return None
        info = copy.deepcopy(LOADERS[node_class])
        for group in info["input"].values():
            for name, spec in group.items():
                folder = FOLDER_OF.get(name)
                if folder is None or node_class == "CheckpointLoaderSimple" and name != "ckpt_name":
                    continue
                files = self.folder_files(folder) + (VAE_EXTRA if folder == "vae" else [])
                if spec and spec[0] == "COMBO":
                    spec[1]["options"] = files
                else:
                    spec[0] = files
        return {node_class: info}

    def model_errors(self, node: dict) -> list[dict]:
        """Validation of a loader's file inputs, as ComfyUI 0.3.64 words it (ckpt_name is checked beside)."""
        errors = []
        for name, value in node["inputs"].items():
            folder = FOLDER_OF.get(name)
            if folder is None or name == "ckpt_name" or not isinstance(value, str):
                continue
            files = self.folder_files(folder) + (VAE_EXTRA if folder == "vae" else [])
            if value not in files:
                errors.append({"type": "value_not_in_list", "message": "Value not in list",
                               "details": f"{name}: '{value}' not in {files}",
                               "extra_info": {"input_name": name, "input_config": [files, {}], "received_value": value}})
        return errors

    def load_error(self, node: dict) -> dict | None:
        """The exception (type, message) a real ComfyUI raises when it loads a placeholder file, else None."""
        files = {v for k, v in node["inputs"].items() if k in FOLDER_OF and isinstance(v, str)}
        if files & set(self.knobs.unloadable):
            return {"exception_type": LOAD_ERROR["exception_type"], "exception_message": LOAD_ERROR["exception_message"]}
        return None
