"""VideoMAE's masked autoencoder: the pretraining model (encoder and decoder) and its tube masks.

Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised Video Pre-Training",
NeurIPS 2022, https://arxiv.org/abs/2203.12602: 90% of the space-time tubes are hidden and the decoder rebuilds
their pixels, normalised per patch (``norm_pix_loss``). Only VideoMAE has a pretraining head in transformers.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, VideoMAEConfig, VideoMAEForPreTraining

from vidcls.errors import ConfigError
from vidcls.models.factory import tiny_videomae_config


def tiny_pretraining_config() -> VideoMAEConfig:
    """The tiny classifier's encoder with a decoder half its width, as VideoMAE pairs ViT-B (768) with 384."""
    config = tiny_videomae_config()
    config.decoder_hidden_size = 64
    config.decoder_num_hidden_layers = 2
    config.decoder_num_attention_heads = 4
    config.decoder_intermediate_size = 128
    return config


# "base": transformers' VideoMAEConfig defaults are the paper's ViT-B (16 x 224 px, decoder 384 wide, 4 blocks).
PRESETS = {"tiny": tiny_pretraining_config, "base": VideoMAEConfig}


def create_pretraining_model(
    model_name_or_path: str | None, config_name: str | None, *, norm_pix_loss: bool = True
) -> VideoMAEForPreTraining:
    """A masked autoencoder from a preset or config (from scratch), or from a VideoMAE checkpoint.

    A checkpoint's encoder is loaded, whatever its head; a decoder it lacks (a classifier's) starts at random.
    """
    if config_name:
        if config_name in PRESETS:
            config = PRESETS[config_name]()
        else:
            try:
                config = AutoConfig.from_pretrained(config_name)
            except (OSError, ValueError) as err:
                raise ConfigError(
                    f"--config_name {config_name}: not a preset ({', '.join(PRESETS)}), config file or folder ({err})"
                ) from err
        _check_videomae(config, f"--config_name {config_name}")
        config.norm_pix_loss = norm_pix_loss
        return VideoMAEForPreTraining(config)
    if not model_name_or_path:
        raise ConfigError("pass --config_name (tiny, base or a config.json) or --model_name_or_path (a VideoMAE)")
    try:
        config = AutoConfig.from_pretrained(model_name_or_path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"--model_name_or_path {model_name_or_path}: cannot load its config ({err})") from err
    _check_videomae(config, f"--model_name_or_path {model_name_or_path}")
    config.norm_pix_loss = norm_pix_loss
    return VideoMAEForPreTraining.from_pretrained(model_name_or_path, config=config)


def _check_videomae(config, flag: str) -> None:
    if config.model_type != "videomae":
        raise ConfigError(
            f"{flag}: a {config.model_type} model; masked-autoencoder pretraining needs a VideoMAE "
            "(--config_name tiny or base, or e.g. --model_name_or_path MCG-NJU/videomae-base)"
        )


def token_grid(config) -> tuple[int, int]:
    """(tubelets in time, patches per frame) of a VideoMAE config: 16 frames of 224 px -> (8, 196)."""
    return config.num_frames // config.tubelet_size, (config.image_size // config.patch_size) ** 2


def tube_mask(config, batch_size: int, mask_ratio: float, *, device=None, generator=None) -> torch.Tensor:
    """VideoMAE's tube masking: per clip, one random set of patch positions hidden in every tubelet.

    Each clip hides exactly ``int(mask_ratio * patches)`` positions (the model needs the same count in every
    clip), the same ones at every time step, so a hidden patch cannot be copied from its neighbour in time.
    Returns bool (B, T' * P) in the order of VideoMAE's patch embeddings (time, then rows, then columns).
    Example: 16 frames of 224 px, ratio 0.9 -> 8 x 196 tokens, 176 of each frame's 196 hidden.
    """
    steps, patches = token_grid(config)
    hidden = int(mask_ratio * patches)
    if not 0 < hidden < patches:
        raise ConfigError(f"--mask_ratio {mask_ratio} hides {hidden} of {patches} patches; it must hide some, not all")
    scores = torch.rand(batch_size, patches, device=device, generator=generator)
    order = scores.argsort(dim=1)  # a random permutation of the positions per clip
    spatial = torch.zeros(batch_size, patches, dtype=torch.bool, device=device)
    spatial.scatter_(1, order[:, :hidden], True)
    return spatial.repeat(1, steps)  # (B, P) -> (B, T' * P): the same positions in every tubelet
