"""The guide's train and eval transforms, with torchvision.transforms.v2 on uint8 video tensors.

Clips stay uint8 through resizing, cropping and flipping; ``normalize`` turns them into floats once, last
(on the accelerator when there is one), so workers move four times fewer bytes.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from vidcls.config import ClipSpec


def decode_short_side(spec: ClipSpec, *, train: bool) -> int:
    """The largest short side a transform can use: frames are decoded straight to it, never larger."""
    return round(spec.image_size * spec.scale_range[1]) if train else spec.image_size


def build_transform(spec: ClipSpec, *, train: bool) -> v2.Transform:
    """uint8 (T, C, H, W) -> uint8 (T, C, size, size).

    Train: random short-side scale (the guide's 256-320 for a 224 crop, same ratios at other sizes), random
    crop, optional horizontal flip. Eval: resize to the model's size, as the guide does.
    """
    size = spec.image_size
    if not train:
        return v2.Resize((size, size), antialias=True)
    low, high = (round(size * ratio) for ratio in spec.scale_range)
    steps = [
        v2.RandomResize(low, high + 1, antialias=True),  # short side drawn from [low, high]
        v2.RandomCrop(size),
    ]
    if spec.hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def to_video_tensor(frames) -> tv_tensors.Video:
    """(T, H, W, 3) uint8 NumPy frames -> (T, 3, H, W) uint8 video tensor."""
    return tv_tensors.Video(torch.from_numpy(frames).permute(0, 3, 1, 2))


def normalize(clips: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 clips (..., C, H, W) -> float32 scaled to [0, 1] and standardised per channel."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=clips.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=clips.device).view(-1, 1, 1)
    return (clips.float() / 255.0 - mean) / std
