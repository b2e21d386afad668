"""What a masked autoencoder makes of a clip: the frames, the frames with the hidden tubes greyed out, and the
frames rebuilt from the visible patches (visible ones as they were). How users check it learned something.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import VideoMAEForPreTraining

from vidcls.config import ClipSpec
from vidcls.engine.batching import prepare_pixels
from vidcls.models.pretraining import tube_mask

DEFAULT_MASK_RATIO = 0.9


def recorded_mask_ratio(model_dir: str | Path) -> float:
    """The mask ratio the model was pretrained with (run.json), else the paper's."""
    run = Path(model_dir) / "run.json"
    return json.loads(run.read_text()).get("recipe.mask_ratio", DEFAULT_MASK_RATIO) if run.is_file() else 0.9


def to_patches(frames: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(T, C, H, W) -> (T'*H'*W', tubelet*patch*patch, C), VideoMAE's order of tokens and of a patch's pixels."""
    t, c, h, w = frames.shape
    x = frames.view(t // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 3, 5, 1, 4, 6, 2)  # (T', H', W', tubelet, patch, patch, C)
    return x.reshape(-1, tubelet * patch * patch, c)


def from_patches(patches: torch.Tensor, shape, tubelet: int, patch: int) -> torch.Tensor:
    """Inverse of ``to_patches``: -> (T, C, H, W)."""
    t, c, h, w = shape
    x = patches.view(t // tubelet, h // patch, w // patch, tubelet, patch, patch, c)
    return x.permute(0, 3, 6, 1, 4, 2, 5).reshape(t, c, h, w)  # (T', ts, C, H', p, W', p) -> (T, C, H, W)


@torch.inference_mode()
def reconstruct(model: VideoMAEForPreTraining, spec: ClipSpec, clip: torch.Tensor, mask_ratio: float, seed: int = 0):
    """uint8 (T, C, H, W) clip -> (original, masked, reconstructed), each uint8 (T, C, H, W)."""
    config = model.config
    mask = tube_mask(config, 1, mask_ratio, generator=torch.Generator().manual_seed(seed))  # (1, N)
    pixels = prepare_pixels({"pixel_values": clip[None]}, "pixel_values", spec)["pixel_values"]
    predicted = model.eval()(pixel_values=pixels, bool_masked_pos=mask).logits[0]  # (hidden, ts*p*p*C)
    tubelet, patch = config.tubelet_size, config.patch_size
    original = to_patches(clip.float() / 255, tubelet, patch)  # (N, ts*p*p, C) in [0, 1]
    predicted = predicted.view(len(predicted), -1, clip.shape[1])
    hidden = original[mask[0]]
    if config.norm_pix_loss:  # the targets were each patch normalised on its own: undo it with the patch's stats
        predicted = predicted * (hidden.var(dim=1, unbiased=True, keepdim=True).sqrt() + 1e-6)
        predicted = predicted + hidden.mean(dim=1, keepdim=True)
    rebuilt, greyed = original.clone(), original.clone()
    rebuilt[mask[0]] = predicted.clamp(0, 1)
    greyed[mask[0]] = 0.5

    def frames(patches):
        return (from_patches(patches, clip.shape, tubelet, patch) * 255).round().to(torch.uint8)

    return clip, frames(greyed), frames(rebuilt)


def save_grid(rows, path: str | Path, scale: int = 1) -> Path:
    """Rows of uint8 (T, C, H, W) clips -> one PNG, a row per clip and a column per frame, 2 px apart."""
    from PIL import Image

    rows = [np.asarray(r).transpose(0, 2, 3, 1) for r in rows]  # (T, C, H, W) -> (T, H, W, C)
    t, h, w, c = rows[0].shape
    gap = 2
    canvas = np.full((len(rows) * (h + gap) - gap, t * (w + gap) - gap, c), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, frame in enumerate(row):
            canvas[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = frame
    canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path
