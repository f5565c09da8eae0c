"""Small model files for tests and benchmarks: real safetensors files (header and zeroed data) whose tensor
names and the shapes detection reads are those of each family, a few KB each. Detection reads names and
shapes, never weights, so these tell a family apart as a real file would; ComfyUI lists and validates
them like real ones, and fails when it tries to load one.

    python -m tests.support.model_files <ComfyUI folder>   # the placeholders the real-ComfyUI tests use
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

UNET = "model.diffusion_model."
BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F8_E4M3": 1}

# Per kind of file: tensor name -> shape (only the axes detection reads are the real ones).
KEYS = {
    "sd15": {UNET + "input_blocks.0.0.weight": [1, 4, 1, 1],
             UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [1, 768]},
    "sd15-inpaint": {UNET + "input_blocks.0.0.weight": [1, 9, 1, 1],
                     UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [1, 768]},
    "sd2": {UNET + "input_blocks.0.0.weight": [1, 4, 1, 1],
            UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [1, 1024]},
    "sdxl": {UNET + "input_blocks.0.0.weight": [1, 4, 1, 1], UNET + "label_emb.0.0.weight": [1, 2816],
             "conditioner.embedders.1.model.ln_final.weight": [4]},
    "sdxl-refiner": {UNET + "input_blocks.0.0.weight": [1, 4, 1, 1], UNET + "label_emb.0.0.weight": [1, 2560]},
    "sd3": {"joint_blocks.0.context_block.attn.qkv.weight": [1, 4], "x_embedder.proj.weight": [1, 16, 2, 2]},
    "flux-dev": {"double_blocks.0.img_attn.norm.key_norm.scale": [4], "img_in.weight": [1, 64],
                 "guidance_in.in_layer.weight": [1, 256]},
    "flux-schnell": {"double_blocks.0.img_attn.norm.key_norm.scale": [4], "img_in.weight": [1, 64]},
    "chroma": {"double_blocks.0.img_attn.norm.key_norm.scale": [4], "img_in.weight": [1, 64],
               "distilled_guidance_layer.in_proj.weight": [1, 64]},
    "qwen-image": {"txt_norm.weight": [4], "img_in.weight": [1, 64]},
    "hidream": {"caption_projection.0.linear.weight": [1, 4]},
    "lumina2": {"cap_embedder.1.weight": [1, 2304]},
    "z-image": {"cap_embedder.1.weight": [1, 2560]},
    "lora-sd15": {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 768],
                  "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [4, 8]},
    "lora-sdxl": {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 2048],
                  "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [4, 8]},
    "lora-flux": {"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": [4, 8]},
    "text-encoder": {"text_model.final_layer_norm.weight": [4]},
    "vae": {"decoder.conv_in.weight": [1, 16, 1, 1]},
}


def write_safetensors(path: Path, tensors: dict[str, list[int]], metadata: dict | None = None,
                      dtype: str = "F16") -> Path:
    """A valid safetensors file: the header names ``tensors`` with their shapes, the data is zeros."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = BYTES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the library writes it
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(offset))
    return path


def write_model(path: Path, kind: str, metadata: dict | None = None) -> Path:
    return write_safetensors(path, KEYS[kind], metadata)


# What the real-ComfyUI checks put into its folders: folder -> (file name, kind, metadata). The checkpoints'
# names sort after the real tiny-* ones, so the first checkpoint a ComfyUI lists stays one that renders.
PLACEHOLDERS = {
    "diffusion_models": [("flux1-dev-placeholder.safetensors", "flux-dev", None),
                         ("sd3.5_medium-placeholder.safetensors", "sd3", None),
                         ("plain-name-a.safetensors", "flux-schnell", None),
                         ("chroma-placeholder.safetensors", "chroma", None),
                         ("qwen_image-placeholder.safetensors", "qwen-image", None),
                         ("hidream_i1-placeholder.safetensors", "hidream", None),
                         ("lumina_2-placeholder.safetensors", "lumina2", None)],
    "checkpoints": [("zz-neutral-name-b.safetensors", "sdxl", {"modelspec.architecture": "stable-diffusion-xl-v1-base",
                                                              "modelspec.resolution": "1024x1024"})],
    "text_encoders": [("clip_l.safetensors", "text-encoder", None), ("clip_g.safetensors", "text-encoder", None),
                      ("t5xxl_fp8_e4m3fn.safetensors", "text-encoder", None),
                      ("qwen_2.5_vl_7b_fp8_scaled.safetensors", "text-encoder", None),
                      ("llama_3.1_8b_instruct_fp8_scaled.safetensors", "text-encoder", None),
                      ("gemma_2_2b_fp16.safetensors", "text-encoder", None)],
    "vae": [("ae.safetensors", "vae", None), ("sd3_vae.safetensors", "vae", None),
            ("qwen_image_vae.safetensors", "vae", None)],
    "loras": [("detail-tweaker-xl.safetensors", "lora-sdxl",
               {"ss_base_model_version": "sdxl_base_v1-0", "modelspec.trigger_phrase": "detailed, intricate"}),
              ("anime-lines-sd15.safetensors", "lora-sd15",
               {"ss_base_model_version": "sd_v1", "ss_tag_frequency": {"img": {"lineart": 40, "anime": 12}}})],
}


def write_placeholders(comfyui: Path) -> list[Path]:
    """The placeholder files of ``PLACEHOLDERS`` in a ComfyUI folder's models/ (a few KB each)."""
    return [write_model(Path(comfyui) / "models" / folder / name, kind, metadata)
            for folder, files in PLACEHOLDERS.items() for name, kind, metadata in files]


if __name__ == "__main__":
    for written in write_placeholders(Path(sys.argv[1])):
        print(written, written.stat().st_size, "bytes")


def family_folders(**changes) -> dict:
    """Knobs for a fake ComfyUI whose folders hold one model of each kind the tests meet, with companions,
    LoRAs and metadata: ``FakeComfyUI(Knobs(**family_folders()))``."""
    knobs = {
        "checkpoints": ["v1-5-pruned-emaonly.safetensors", "juggernautXL_v9.safetensors",
                        "sd_xl_turbo_1.0_fp16.safetensors", "zz-neutral-name-b.safetensors", "broken.safetensors"],
        "diffusion_models": ["flux1-dev-fp8_e4m3fn.safetensors", "sd3.5_medium.safetensors"],
        "text_encoders": ["clip_g.safetensors", "clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"],
        "vae": ["ae.safetensors", "sd3_vae.safetensors"],
        "loras": ["detail-tweaker-xl.safetensors", "anime-lines-sd15.safetensors", "flux-realism.safetensors"],
        "metadata": {
            "checkpoints/zz-neutral-name-b.safetensors": {"modelspec.architecture": "stable-diffusion-xl-v1-base",
                                                       "modelspec.resolution": "1024x1024"},
            "loras/detail-tweaker-xl.safetensors": {"ss_base_model_version": "sdxl_base_v1-0",
                                                    "modelspec.trigger_phrase": "xldetail, intricate lines"},
            "loras/anime-lines-sd15.safetensors": {"ss_base_model_version": "sd_v1",
                                                   "ss_tag_frequency": json.dumps({"img": {"lineart": 40, "anime": 12}})},
        },
    }
    return {**knobs, **changes}
