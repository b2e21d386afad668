"""Where data meets a model: batches keyed by the family's input name, normalised once on the device."""

from __future__ import annotations

import torch
from torch.utils.data import default_collate
from torchvision import tv_tensors

from vidcls.config import ClipSpec
from vidcls.data.transforms import normalize


class ClipCollator:
    """Stack clip dicts into a model batch; clips that failed to decode (None) are dropped.

    Pixels stay uint8 here (collation runs in the workers): ``prepare_pixels`` normalises them on the device.
    They also keep the decoder's (T, H, W, C) memory layout: clips are stacked as such, a plain copy, and the
    batch is a (B, T, C, H, W) view of it. Reordering the bytes here would cost a worker about as much as the
    crop; ``normalize`` does it while converting to float, at little cost (none on a GPU).
    """

    def __init__(self, input_name: str):
        self.input_name = input_name

    def __call__(self, items: list[dict | None]) -> dict[str, torch.Tensor]:
        items = [item for item in items if item is not None]
        if not items:
            return {}  # every clip of the batch failed to decode; callers skip it
        return {
            # default_collate stacks into shared memory in a worker, so handing the batch over copies nothing.
            self.input_name: default_collate([item["video"].movedim(-3, -1) for item in items]).movedim(-1, -3),
            "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),
            "video_index": torch.tensor([item["video_index"] for item in items], dtype=torch.long),
        }


def augment_clips(batch: dict, input_name: str, augment) -> dict:
    """Apply a uint8 clip transform (``build_clip_augment``) to each clip of a batch on its device, in place.

    Each clip gets its own draw; ``Video`` makes torchvision treat (T, C, H, W) as the frames of one clip.
    """
    clips = batch[input_name]  # (B, T, C, H, W) uint8
    batch[input_name] = torch.stack([augment(tv_tensors.Video(clip)).as_subclass(torch.Tensor) for clip in clips])
    return batch


class BatchMixer:
    """MixUp or CutMix of a normalised training batch on its device, with soft targets (B, K) and label smoothing.

    Mixing needs floats, so it runs after ``prepare_pixels`` (the Trainer's ``_prepare_inputs``), not in the
    workers' collate: there it would cost a float round trip per clip (or ship 2-4x the bytes to stay float),
    while on the device it is one fused op. Normalising is affine per channel and mixing weights sum to 1, so
    mixing normalised clips equals normalising mixed ones.

    As in timm's ``Mixup`` (VideoMAE's code), one lambda ~ Beta(alpha, alpha) per batch; with both on, each batch
    picks MixUp or CutMix with even odds; CutMix pastes one box through every frame and sets lambda to the area
    kept. Clip i is paired with clip i - ``partner_shift``: with repeated augmentation the k views of a video sit
    next to each other, and a shift of k never mixes a clip with another view of itself (batches of 2k or more).
    torchvision's ``MixUp``/``CutMix`` pair neighbours (shift 1), which would do that half the time with k=2.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        label_smoothing: float = 0.0,
        partner_shift: int = 1,
    ):
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.label_smoothing = label_smoothing
        self.partner_shift = partner_shift

    def __call__(self, batch: dict, input_name: str) -> dict:
        pixels, labels = batch[input_name], batch["labels"]  # (B, T, C, H, W) float, (B,) int
        targets = torch.nn.functional.one_hot(labels, self.num_classes).float()  # (B, K)
        mode = self._pick_mode()
        if mode and len(labels) > 1:
            shift = self.partner_shift if len(labels) >= 2 * self.partner_shift else 1
            alpha = self.cutmix_alpha if mode == "cutmix" else self.mixup_alpha
            lam = float(torch.distributions.Beta(alpha, alpha).sample())
            partners = pixels.roll(shift, dims=0)
            if mode == "cutmix":
                height, width = pixels.shape[-2:]
                y1, y2, x1, x2 = _cutmix_box(height, width, lam)
                pixels = pixels.clone()
                pixels[..., y1:y2, x1:x2] = partners[..., y1:y2, x1:x2]  # same box in every frame
                lam = 1.0 - (y2 - y1) * (x2 - x1) / (height * width)
            else:
                pixels = pixels * lam + partners * (1.0 - lam)
            targets = targets * lam + targets.roll(shift, dims=0) * (1.0 - lam)
        targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return {**batch, input_name: pixels, "labels": targets}

    def _pick_mode(self) -> str | None:
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            return "cutmix" if float(torch.rand(())) < 0.5 else "mixup"
        return "mixup" if self.mixup_alpha > 0 else "cutmix" if self.cutmix_alpha > 0 else None


def _cutmix_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """A box of about (1 - lam) of the frame at a uniform centre, clipped to it (timm's ``rand_bbox``)."""
    ratio = (1.0 - lam) ** 0.5
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(torch.randint(0, height, ())), int(torch.randint(0, width, ()))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return y1, y2, x1, x2


def prepare_pixels(batch: dict, input_name: str, spec: ClipSpec, dtype: torch.dtype = torch.float32) -> dict:
    """Normalise the uint8 clips of a batch already on its device, in place."""
    pixels = batch[input_name]
    if pixels.dtype == torch.uint8:
        batch[input_name] = normalize(pixels, spec.mean, spec.std).to(dtype)
    return batch
