"""The guide's train and eval transforms, with torchvision.transforms.v2 on uint8 video tensors.

Clips stay uint8 through resizing, cropping and flipping; ``normalize`` turns them into floats once, last
(on the accelerator when there is one), so workers move four times fewer bytes.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from vidcls.config import Augmentation, ClipSpec
from vidcls.data.decode import FrameSize
from vidcls.errors import ConfigError


def train_short_sides(spec: ClipSpec, augmentation: Augmentation = Augmentation()) -> tuple[int, int]:
    """The range the training short side is drawn from: the guide's 256-320 for a 224 crop, same ratios at other
    sizes."""
    low, high = (round(spec.image_size * ratio) for ratio in augmentation.scale_range)
    return low, high


def decode_size(
    spec: ClipSpec, *, train: bool, num_crops: int = 1, augmentation: Augmentation = Augmentation()
) -> FrameSize:
    """The size frames are decoded (and cached) at, so that the transforms after it crop instead of resizing.

    Train: at most the largest short side the random scale can draw (each clip then draws its own, see
    ``RandomScaleCrop``). Eval: exactly the model's size x size, the guide's squashing ``Resize``; for 3 crops,
    a short side of at most the model's size (the views enlarge smaller frames).
    """
    if train:
        return train_short_sides(spec, augmentation)[1]
    return spec.image_size if num_crops == 3 else (spec.image_size, spec.image_size)


class RandomScaleCrop:
    """The guide's training view: random short-side scale, random square crop, optional horizontal flip.

    uint8 (T, C, H, W) -> uint8 (T, C, size, size), in the memory layout it came in (see ``ClipCollator``).
    Only the window that is kept is resized (crop, then
    resize), and not even that when the frames already have the drawn short side: the dataset draws it first
    (``draw_short_side``) and has the decoder shrink larger frames to it. Smaller frames (240p under a
    256-320 scale) are enlarged here, window only: FFmpeg's scaler would enlarge every pixel, at a higher cost.
    """

    def __init__(self, spec: ClipSpec, augmentation: Augmentation = Augmentation()):
        self.size = spec.image_size
        self.low, self.high = train_short_sides(spec, augmentation)
        self.hflip = augmentation.hflip

    def draw_short_side(self) -> int:
        return int(torch.randint(self.low, self.high + 1, ()))

    def __call__(self, clip: torch.Tensor, short_side: int | None = None) -> torch.Tensor:
        short_side = self.draw_short_side() if short_side is None else short_side
        height, width = clip.shape[-2:]
        # The crop, in these frames' pixels: size pixels of frames scaled to short_side.
        window = min(height, width, round(self.size * min(height, width) / short_side))
        top = int(torch.randint(0, height - window + 1, ()))
        left = int(torch.randint(0, width - window + 1, ()))
        if window == self.size:
            clip = clip[..., top : top + window, left : left + window]
        else:
            clip = F.resized_crop(clip, top, left, window, window, [self.size, self.size], antialias=True)
        if self.hflip and torch.rand(()) < 0.5:
            clip = clip.flip(-1)
        return clip


def build_transform(spec: ClipSpec, *, train: bool, augmentation: Augmentation = Augmentation()):
    """uint8 (T, C, H, W) -> uint8 (T, C, size, size): ``RandomScaleCrop`` for training; for evaluation, resize
    to the model's size as the guide does (nothing to do for frames decoded at ``decode_size``)."""
    if train:
        return RandomScaleCrop(spec, augmentation)
    return v2.Resize((spec.image_size, spec.image_size), antialias=True)


def build_clip_augment(augmentation: Augmentation, mean) -> v2.Transform | None:
    """The recipe's RandAugment and random erasing: uint8 (T, C, H, W) -> same; None when both are off.

    Applied to each training clip at the model's size, on the device (``engine/batching.py``), not in the data
    workers: at 224 px, RandAugment's 4 ops cost about 30 ms per 16-frame clip on a CPU core, which halved the
    loader's clips/s. A video tensor gets one draw of ops and one rectangle for all its frames, as VideoMAE
    applies one RandAugment policy to a whole clip.
    """
    steps = []
    if augmentation.rand_augment:
        num_ops, magnitude = augmentation.rand_augment
        # 11 bins: magnitudes 0..10 as in timm's "rand-m7-n4" (VideoMAE's code); torchvision's ops already grow
        # more severe with the magnitude (timm's "inc1"); its per-draw magnitude noise ("mstd0.5") has no equivalent.
        steps.append(v2.RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=11))
    if augmentation.random_erasing:
        # Filled with the mean colour, which normalises to 0: timm's "const" mode on uint8. VideoMAE's code fills
        # with noise and erases each frame on its own; one rectangle through the whole clip hides the same object.
        mean_colour = [round(255 * m) for m in mean]
        steps.append(v2.RandomErasing(p=augmentation.random_erasing, value=mean_colour))
    return v2.Compose(steps) if steps else None


def crop_offsets(length: int, size: int, num_crops: int) -> list[int]:
    """Start of each crop of ``size`` along an axis of ``length``: first, centred, last (the 3-crop test).

    Examples: crop_offsets(300, 224, 3) -> [0, 38, 76]; crop_offsets(224, 224, 3) -> [0, 0, 0];
    crop_offsets(300, 224, 1) -> [38].
    """
    room = max(0, length - size)
    return [room // 2] if num_crops == 1 else [0, room // 2, room]


class EvalCrops:
    """uint8 (T, C, H, W) -> a list of ``num_crops`` uint8 (T, C, size, size) views; picklable, for worker processes.

    1 crop: the guide's evaluation transform (the whole frame resized to size x size). 3 crops: the spatial test of
    SlowFast and VideoMAE (https://arxiv.org/abs/2203.12602, section 4): resize the short side to ``size``, then
    take the left, centre and right crops of a landscape frame (top, centre and bottom of a portrait one).
    """

    def __init__(self, spec: ClipSpec, num_crops: int = 1):
        if num_crops not in (1, 3):
            raise ConfigError(f"--num_crops must be 1 or 3, got {num_crops!r}")
        self.size = spec.image_size
        self.num_crops = num_crops
        self.resize = build_transform(spec, train=False) if num_crops == 1 else v2.Resize(self.size, antialias=True)

    def __call__(self, clip: torch.Tensor) -> list[torch.Tensor]:
        clip = self.resize(clip)
        if self.num_crops == 1:
            return [clip]
        size = self.size  # (T, C, H, W), min(H, W) == size
        height, width = clip.shape[-2:]
        if width >= height:  # landscape (or square): slide along the width
            return [clip[..., :, x : x + size] for x in crop_offsets(width, size, self.num_crops)]
        return [clip[..., y : y + size, :] for y in crop_offsets(height, size, self.num_crops)]


def to_video_tensor(frames) -> tv_tensors.Video:
    """(T, H, W, 3) uint8 NumPy frames -> (T, 3, H, W) uint8 video tensor."""
    return tv_tensors.Video(torch.from_numpy(frames).permute(0, 3, 1, 2))


def normalize(clips: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 clips (..., C, H, W) -> float32 scaled to [0, 1] and standardised per channel.

    Always a new contiguous tensor, never the caller's: batches arrive in the decoder's channels-last layout
    (see ``ClipCollator``), and converting and reordering in one copy costs about what converting alone does.
    Computed as ``x * scale + shift`` (``scale_and_shift``): one multiply and one add instead of four steps.
    """
    scale, shift = scale_and_shift(mean, std)
    if clips.device.type == "cpu":
        return normalize_on_cpu(clips, scale, shift)
    return normalize_with_torch(clips, scale, shift)


def scale_and_shift(mean, std) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (C,) ``1 / (255 std)`` and ``-mean / std``: normalising uint8 pixels is ``x * scale + shift``."""
    std = torch.as_tensor(std, dtype=torch.float32)
    return 1.0 / (255.0 * std), -torch.as_tensor(mean, dtype=torch.float32) / std


def normalize_on_cpu(clips: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """NumPy converts and multiplies in one pass over cache-sized chunks, then adds in a second: half the time of
    torch's convert, multiply and add on a CPU core, with the same float32 results."""
    out = np.empty(clips.shape, dtype=np.float32)
    np.multiply(clips.numpy(), scale.numpy().reshape(-1, 1, 1), out=out)
    np.add(out, shift.numpy().reshape(-1, 1, 1), out=out)
    return torch.from_numpy(out)


def normalize_with_torch(clips: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The same on any device (a GPU): one converting copy, then a multiply and an add in place, per channel."""
    out = torch.empty(clips.shape, dtype=torch.float32, device=clips.device)
    out.copy_(clips)
    flat = out.view(-1, out.shape[-3], out.shape[-2] * out.shape[-1])  # (N, C, H*W)
    flat.mul_(scale.to(out.device).view(1, -1, 1)).add_(shift.to(out.device).view(1, -1, 1))
    return out
