"""The image-to-image form of a workflow, so one workflow serves new pictures and changes alike.

A graph that already loads a picture into its sampler (LoadImage -> VAEEncode -> latent_image,
found by ``workflows.infer_roles`` as the ``image`` role) is used as it is. A plain txt2img graph
gets its empty latent replaced by ``LoadImage -> VAEEncode`` with the graph's own VAE (the one its
decoder uses), under the same node id, so every link to it still holds. The reverse, for a new
picture asked of an img2img-only graph, puts an empty latent where the encoder was.
"""
from __future__ import annotations

import copy
import dataclasses

from .workflows import LATENT_LINKS, PIXEL_LINKS, Workflow, WorkflowError, _Graph

DERIVED_NOTE = ("The workflow {name} is text-to-image; its image-to-image form was made for this change "
                "(the empty latent replaced by the picture, encoded with the workflow's own VAE).")
# What a derived graph needs from ComfyUI beyond the workflow's own nodes.
PICTURE_NODES = ("LoadImage", "VAEEncode")
NEW_PICTURE_SIZE = 512  # an img2img-only workflow asked for a new picture with no size set


def _new_id(graph: dict) -> str:
    numbers = [int(n) for n in graph if n.isdigit()]
    return str(max(numbers, default=0) + 1)


def _vae_link(workflow: Workflow) -> list:
    """The VAE the graph decodes with (the decoder upstream of its output), else its checkpoint's."""
    g = _Graph(workflow.graph, workflow.name)
    for node_id in g.upstream(workflow.roles.output):
        node = workflow.graph[node_id]
        vae = node["inputs"].get("vae")
        if "VAEDecode" in node["class_type"] and isinstance(vae, list):
            return list(vae)
    if workflow.roles.checkpoint is not None:
        return [workflow.roles.checkpoint[0], 2]
    raise WorkflowError(f"cannot change a picture with {workflow.name}: it has no VAE decoder whose VAE could "
                        "encode the picture; use workflows/img2img.json", code="not_img2img")


def img2img_form(workflow: Workflow) -> tuple[Workflow, str | None]:
    """The workflow ready to take a picture, and a note for the job when it had to be derived."""
    roles = workflow.roles
    if roles.image is not None:
        return workflow, None
    if roles.latent is None:
        raise WorkflowError(f"cannot change a picture with {workflow.name}: the sampler's latent_image does not "
                            "lead to an empty latent (or a LoadImage) to replace", code="not_img2img")
    if roles.denoise is None and "start_at_step" not in workflow.graph[roles.sampler]["inputs"]:
        raise WorkflowError(f"cannot change a picture with {workflow.name}: its sampler has no denoise input; "
                            "use workflows/img2img.json or a KSampler", code="not_img2img")
    graph = copy.deepcopy(workflow.graph)
    image_id = _new_id(graph)
    graph[image_id] = {"class_type": "LoadImage", "_meta": {"title": "Picture to change"}, "inputs": {"image": ""}}
    graph[roles.latent] = {"class_type": "VAEEncode", "_meta": {"title": "VAE Encode (picture to change)"},
                           "inputs": {"pixels": [image_id, 0], "vae": _vae_link(workflow)}}
    defaults = {k: v for k, v in workflow.defaults.items() if k not in ("width", "height")}
    derived = dataclasses.replace(workflow, graph=graph, defaults=defaults,
                                  roles=dataclasses.replace(roles, latent=None, image=(image_id, "image")))
    return derived, DERIVED_NOTE.format(name=workflow.name)


def txt2img_form(workflow: Workflow) -> Workflow:
    """An img2img-only workflow asked for a new picture: an empty latent where the encoder was, full denoise."""
    roles = workflow.roles
    if roles.image is None or roles.latent is not None:
        return workflow
    graph = copy.deepcopy(workflow.graph)
    g = _Graph(graph, workflow.name)
    encoder = g.follow(g.link(roles.sampler, "latent_image"),
                       lambda node: any(isinstance(node["inputs"].get(name), list) for name in PIXEL_LINKS),
                       LATENT_LINKS)
    if encoder is None:
        raise WorkflowError(f"{workflow.name} only changes pictures; choose a text-to-image workflow for a new one",
                            code="not_txt2img")
    graph[encoder] = {"class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"},
                      "inputs": {"width": NEW_PICTURE_SIZE, "height": NEW_PICTURE_SIZE, "batch_size": 1}}
    if not any(isinstance(v, list) and v[0] == roles.image[0] for node in graph.values() for v in node["inputs"].values()):
        del graph[roles.image[0]]
    if roles.denoise is not None:
        graph[roles.denoise[0]]["inputs"][roles.denoise[1]] = 1.0
    defaults = {**workflow.defaults, "width": NEW_PICTURE_SIZE, "height": NEW_PICTURE_SIZE}
    defaults.pop("denoise", None)
    return dataclasses.replace(workflow, graph=graph, defaults=defaults,
                               roles=dataclasses.replace(roles, latent=encoder, image=None))
