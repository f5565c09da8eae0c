"""The fake ComfyUI's input folder: ``POST /upload/image``, ``LoadImage`` and ``VAEEncode``, as a real
ComfyUI 0.3.64 answered them (tests/comfyui_traces/upload_image.json):

- the upload goes to ``type`` (input by default; temp and output too; anything else is a 500), into
  ``subfolder``; one that leaves the folder, or a request without an ``image`` file, is a bare 400;
- without ``overwrite=true``/``1`` a name already taken keeps its file: the same bytes answer the same
  name, other bytes are saved as ``name (1).png``, ``name (2).png``...;
- any bytes are accepted (a text file named .png too); ``LoadImage`` then fails when it runs
  (``PIL.UnidentifiedImageError``), while a name that is not in the folder fails validation
  (``custom_validation_failed``, "Invalid image file: <name>").

A picture run through ``LoadImage -> VAEEncode -> sampler`` comes out at its own size, blended toward
the seed's colour by ``denoise``: the more may change, the less of the picture is kept.
"""
from __future__ import annotations

import io
import json
import posixpath

from flask import Response, jsonify, request
from PIL import Image, UnidentifiedImageError

from .data import ROOT

TRACE = json.loads((ROOT / "tests" / "comfyui_traces" / "upload_image.json").read_text())["exchanges"]
OBJECT_INFO = {e["http"].rsplit("/", 1)[1]: e["body"] for e in TRACE if e["http"].startswith("GET /object_info/")}
SERVER_ERROR = "500 Internal Server Error\n\nServer got itself in trouble"
INPUT_ROOT = "/ComfyUI/input"  # where a real ComfyUI's messages say the file was


class BadPicture(Exception):
    """LoadImage could not read the file: the execution_error a real ComfyUI sends."""


class InputFolder:
    """Mixed into FakeComfyUI: ``self.inputs`` maps (type, "subfolder/name") to bytes."""

    def upload_image(self):
        if self.knobs.upload_status is not None:  # a ComfyUI (or proxy) that refuses uploads
            return Response("upload refused", status=self.knobs.upload_status)
        image = request.files.get("image")
        if image is None or not image.filename:
            return Response(status=400)
        kind = request.form.get("type") or "input"
        if kind not in ("input", "temp", "output"):
            return Response(SERVER_ERROR, status=500, mimetype="text/plain")
        subfolder = request.form.get("subfolder", "")
        folder = posixpath.normpath(subfolder) if subfolder else ""
        if folder.startswith("..") or folder.startswith("/"):
            return Response(status=400)
        folder = "" if folder == "." else folder
        data, name = image.read(), image.filename
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        overwrite = request.form.get("overwrite") in ("true", "1")
        number = 1
        while not overwrite and (kind, posixpath.join(folder, name)) in self.inputs:
            if self.inputs[(kind, posixpath.join(folder, name))] == data:
                break  # the same bytes under that name: nothing is written, the name is answered
            name = f"{stem} ({number}){dot}{ext}"
            number += 1
        self.inputs[(kind, posixpath.join(folder, name))] = data
        self.uploads.append({"name": name, "subfolder": subfolder, "type": kind, "bytes": len(data)})
        return jsonify({"name": name, "subfolder": subfolder, "type": kind})

    def picture_object_info(self, node_class: str):
        if node_class in self.knobs.missing_classes:
            return {}
        if node_class == "LoadImage":
            files = sorted(path for kind, path in self.inputs if kind == "input" and "/" not in path)
            info = json.loads(json.dumps(OBJECT_INFO["LoadImage"]))
            info["LoadImage"]["input"]["required"]["image"][0] = files
            return info
        return OBJECT_INFO.get(node_class)

    def picture_errors(self, node: dict) -> list[dict]:
        """Validation of a LoadImage: its file must be in the input folder."""
        image = node["inputs"].get("image")
        if node["class_type"] != "LoadImage" or ("input", str(image)) in self.inputs:
            return []
        return [{"type": "custom_validation_failed", "message": "Custom validation failed for node",
                 "details": f"image - Invalid image file: {image}", "extra_info": {"input_name": "image"}}]

    def load_picture(self, node: dict) -> Image.Image:
        path = str(node["inputs"]["image"])
        try:
            picture = Image.open(io.BytesIO(self.inputs[("input", path)]))
            picture.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise BadPicture(f"cannot identify image file '{INPUT_ROOT}/{path}'\n") from exc
        return picture.convert("RGB")

    def changed_picture(self, graph: dict, colour: tuple) -> Image.Image | None:
        """The picture a LoadImage -> VAEEncode chain feeds the sampler, blended toward ``colour`` by denoise."""
        for node in graph.values():
            latent = node["inputs"].get("latent_image")
            if not (isinstance(latent, list) and latent[0] in graph):
                continue
            encoder = graph[latent[0]]
            pixels = encoder["inputs"].get("pixels")
            if encoder["class_type"] != "VAEEncode" or not (isinstance(pixels, list) and pixels[0] in graph):
                continue
            picture = self.load_picture(graph[pixels[0]])
            denoise = float(node["inputs"].get("denoise", 1.0))
            return Image.blend(picture, Image.new("RGB", picture.size, colour), denoise)
        return None
