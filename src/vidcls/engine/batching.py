"""Where data meets a model: batches keyed by the family's input name, normalised once on the device."""

from __future__ import annotations

import torch

from vidcls.config import ClipSpec
from vidcls.data.transforms import normalize


class ClipCollator:
    """Stack clip dicts into a model batch; clips that failed to decode (None) are dropped.

    Pixels stay uint8 here (collation runs in the workers): ``prepare_pixels`` normalises them on the device.
    """

    def __init__(self, input_name: str):
        self.input_name = input_name

    def __call__(self, items: list[dict | None]) -> dict[str, torch.Tensor]:
        items = [item for item in items if item is not None]
        if not items:
            return {}  # every clip of the batch failed to decode; callers skip it
        return {
            self.input_name: torch.stack([item["video"] for item in items]),  # (B, T, C, H, W) uint8
            "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),
            "video_index": torch.tensor([item["video_index"] for item in items], dtype=torch.long),
        }


def prepare_pixels(batch: dict, input_name: str, spec: ClipSpec, dtype: torch.dtype = torch.float32) -> dict:
    """Normalise the uint8 clips of a batch already on its device, in place."""
    pixels = batch[input_name]
    if pixels.dtype == torch.uint8:
        batch[input_name] = normalize(pixels, spec.mean, spec.std).to(dtype)
    return batch
