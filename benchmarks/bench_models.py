"""Benchmark model detection and graph building (targets: 200 files detected in under 1 s in all; one
job's graph in under 5 ms).

    .venv/bin/python benchmarks/bench_models.py [--files 200] [--graphs 1000] [--comfyui-url URL]

Detection: the benchmark writes ``--files`` safetensors files of every family (tests/support/model_files.py:
the real tensor names, a few KB each) into a ComfyUI-like folder and times a fresh ``ModelCatalog``
detecting each from its header, as it does when the ComfyUI folder is known; then the same files again
(the per-file cache). With ``--comfyui-url`` it also times listing that server's models through
/models and /view_metadata, cold and cached. Graphs: ``graph_for`` for an SDXL checkpoint, a Flux
diffusion model with its companions, and an SDXL checkpoint with two LoRAs, each timed ``--graphs`` times.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchlib import summary

from speech2image.picture import (  # noqa: E402
    ComfyClient,
    ModelCatalog,
    RenderParams,
    ServerFacts,
    WorkflowLibrary,
    detect,
    graph_for,
    render_job,
)
from tests.support.data import ROOT  # noqa: E402
from tests.support.model_files import KEYS, write_model  # noqa: E402

LOADERS = {"DualCLIPLoader": {"clip_name1": ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
                              "clip_name2": ["clip_l.safetensors", "t5xxl_fp16.safetensors"], "type": ["flux"]},
           "VAELoader": {"vae_name": ["ae.safetensors"]}}


def bench_detection(count: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-models-"))
    kinds = [k for k in KEYS if not k.startswith(("lora", "text", "vae"))]
    files = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        sub = "diffusion_models" if kind not in ("sd15", "sd15-inpaint", "sd2", "sdxl", "sdxl-refiner") else "checkpoints"
        name = f"model-{i:04d}.safetensors"  # neutral names: the header decides
        write_model(folder / "models" / sub / name, kind)
        files.append((sub, name, kind))
    catalog = ModelCatalog(comfyui_dir=str(folder))
    started = time.perf_counter()
    found = [catalog.describe("local", sub, name) for sub, name, _ in files]
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for sub, name, _ in files:
        catalog.describe("local", sub, name)
    warm = time.perf_counter() - started
    by_header = sum(1 for m in found if m.source == "header")
    return {"files": count, "bytes_each_max": max((folder / "models" / s / n).stat().st_size for s, n, _ in files),
            "cold_total_s": round(cold, 4), "cold_per_file_ms": round(cold / count * 1000, 3),
            "cached_total_s": round(warm, 4), "told_by_header": by_header}


def bench_server(url: str) -> dict:
    client = ComfyClient(url)
    catalog = ModelCatalog()
    started = time.perf_counter()
    models = catalog.models(client)
    cold = time.perf_counter() - started
    catalog.forget()  # the listing again, each file's detection from the cache
    started = time.perf_counter()
    catalog.models(client)
    warm = time.perf_counter() - started
    return {"server": url, "models": len(models), "cold_s": round(cold, 4), "cached_detection_s": round(warm, 4),
            "families": sorted({m.label for m in models})}


def bench_graphs(repeats: int) -> dict:
    library = WorkflowLibrary(ROOT / "workflows", ROOT / "no-uploads")
    workflow = library.load("txt2img.json")
    cases = {
        "sdxl checkpoint": ("juggernautXL_v9.safetensors", "checkpoints", ()),
        "flux diffusion model": ("flux1-dev-fp8.safetensors", "diffusion_models", ()),
        "sdxl + 2 LoRAs": ("juggernautXL_v9.safetensors", "checkpoints",
                           ({"name": "a-xl.safetensors", "strength": 0.8}, {"name": "b-xl.safetensors", "strength": 0.5})),
    }
    loras = (detect("a-xl.safetensors", "loras"), detect("b-xl.safetensors", "loras"))
    results = {}
    for label, (name, folder, chosen) in cases.items():
        facts = ServerFacts("bench", (detect(name, folder),), loaders=LOADERS, loras=loras)
        job = render_job(workflow, RenderParams("a red fox in the snow", "blurry", checkpoint=name, loras=chosen))
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            graph_for(job, facts)
            times.append(time.perf_counter() - started)
        results[label] = summary(times, scale=1000, digits=3)  # milliseconds
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--comfyui-url", help="also time listing a real ComfyUI's models")
    args = parser.parse_args()
    report = {"detection": bench_detection(args.files), "graph_ms": bench_graphs(args.graphs)}
    if args.comfyui_url:
        report["server"] = bench_server(args.comfyui_url)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
