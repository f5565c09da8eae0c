"""A Coqui TTS model small enough to build at test time, so nothing is downloaded."""
from __future__ import annotations


def tiny_vits(folder):
    """A randomly initialised VITS of a few MB, saved as Coqui saves its models."""
    import torch
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits, VitsArgs

    config = VitsConfig(
        model_args=VitsArgs(hidden_channels=32, hidden_channels_ffn_text_encoder=64, num_layers_text_encoder=2,
                            num_heads_text_encoder=2, resblock_type_decoder="2", upsample_rates_decoder=[8, 8, 4],
                            upsample_initial_channel_decoder=32, upsample_kernel_sizes_decoder=[16, 16, 8],
                            resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3]],
                            num_layers_flow=2, num_layers_posterior_encoder=2, use_sdp=False,
                            init_discriminator=False),
        text_cleaner="basic_cleaners", use_phonemes=False, characters=None,
    )
    config.audio.sample_rate = 16000
    config.audio.hop_length = 256
    config.audio.win_length = 1024
    model = Vits(config)  # Vits.init_from_config(config) is deprecated in coqui-tts 0.28
    model_path, config_path = folder / "model.pth", folder / "config.json"
    torch.save({"model": model.state_dict(), "config": config.to_dict()}, model_path)
    config.save_json(str(config_path))
    return model_path, config_path
