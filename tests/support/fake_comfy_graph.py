"""How the fake ComfyUI reads a graph: validation as a real ComfyUI 0.3.64 answers it, the order
nodes run in, and the signatures its cache compares."""
from __future__ import annotations

import json

KNOWN_CLASSES = {
    "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "KSamplerAdvanced", "VAEDecode",
    "SaveImage", "PreviewImage", "LoraLoader", "ConditioningCombine", "CLIPSetLastLayer", "SamplerCustomAdvanced",
    "CFGGuider", "RandomNoise", "KSamplerSelect", "BasicScheduler", "UNETLoader", "DualCLIPLoader", "VAELoader",
    "EmptySD3LatentImage", "CLIPTextEncodeSDXL", "LoadImage", "VAEEncode", "CLIPLoader", "TripleCLIPLoader",
    "QuadrupleCLIPLoader", "LoraLoaderModelOnly", "FluxGuidance", "ModelSamplingSD3", "ModelSamplingAuraFlow",
    "ModelSamplingDiscrete", "ConditioningZeroOut", "BasicGuider", "SDTurboScheduler",
}
OUTPUT_CLASSES = {"SaveImage", "PreviewImage"}
REQUIRED = {"KSampler": ["model", "positive", "negative", "latent_image", "seed", "steps", "cfg"]}


def validate(graph: dict, knobs, picture_errors) -> dict | None:
    """400 answers as ComfyUI 0.3.64 gives them (traces c_*.json, upload_image.json); None when it would run."""
    if "nodes" in graph and "links" in graph:
        return {"error": {"type": "invalid_prompt", "message": "Cannot execute because a node is missing the class_type property.", "details": "Node ID '#nodes'", "extra_info": {}}, "node_errors": {}}
    for node_id, node in graph.items():
        if not isinstance(node, dict) or node.get("class_type") not in KNOWN_CLASSES or node.get("class_type") in knobs.missing_classes:
            name = node.get("class_type") if isinstance(node, dict) else None
            return {"error": {"type": "invalid_prompt", "message": f"Cannot execute because node {name} does not exist.", "details": f"Node ID '#{node_id}'", "extra_info": {}}, "node_errors": {}}
    outputs = [n for n, node in graph.items() if node["class_type"] in OUTPUT_CLASSES]
    if not outputs:
        return {"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}}
    node_errors = {}
    for node_id, node in graph.items():
        errors = []
        for name in REQUIRED.get(node["class_type"], []):
            if name not in node["inputs"]:
                errors.append({"type": "required_input_missing", "message": "Required input is missing", "details": name, "extra_info": {"input_name": name}})
        errors.extend(picture_errors(node))
        denoise = node["inputs"].get("denoise")
        if isinstance(denoise, (int, float)) and not 0.0 <= denoise <= 1.0:
            bigger = denoise > 1
            errors.append({"type": "value_bigger_than_max" if bigger else "value_smaller_than_min",
                           "message": f"Value {denoise} {'bigger than max of 1.0' if bigger else 'smaller than min of 0.0'}",
                           "details": "denoise", "extra_info": {"input_name": "denoise", "received_value": denoise}})
        ckpt = node["inputs"].get("ckpt_name")
        if node["class_type"] == "CheckpointLoaderSimple" and ckpt not in knobs.checkpoints:
            errors.append({"type": "value_not_in_list", "message": "Value not in list",
                           "details": f"ckpt_name: '{ckpt}' not in {knobs.checkpoints}",
                           "extra_info": {"input_name": "ckpt_name", "input_config": [knobs.checkpoints, {"tooltip": "The name of the checkpoint (model) to load."}], "received_value": ckpt}})
        if errors:
            node_errors[node_id] = {"errors": errors, "dependent_outputs": outputs, "class_type": node["class_type"]}
    if node_errors:
        return {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": node_errors}
    return None


def order(graph: dict) -> list[str]:
    """Nodes in the order they run: what each output needs, depth first."""
    found, seen = [], set()

    def visit(node_id):
        if node_id in seen:
            return
        seen.add(node_id)
        for value in graph[node_id]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] in graph:
                visit(value[0])
        found.append(node_id)

    for node_id, node in graph.items():
        if node["class_type"] in OUTPUT_CLASSES:
            visit(node_id)
    return found

def signatures(graph: dict) -> dict[str, str]:
    """Each node with everything upstream of it, as text: equal signatures are cached."""
    memo = {}

    def sig(node_id):
        if node_id not in memo:
            node = graph[node_id]
            inputs = {k: (sig(v[0]), v[1]) if isinstance(v, list) and len(v) == 2 and v[0] in graph else v
                      for k, v in sorted(node["inputs"].items())}
            memo[node_id] = json.dumps([node["class_type"], inputs], sort_keys=True)
        return memo[node_id]

    return {n: sig(n) for n in graph}
