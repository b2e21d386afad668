"""Clips per second of a DataLoader: shared by both sides of the loader benchmark (needs only torch).

Run by vidcls's venv and by the guide's benchmark-only venv alike, so it must not import vidcls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import torch


def endless(loader: Iterable[dict]) -> Iterator[dict]:
    """Batches epoch after epoch (small benchmark datasets end long before the count is reached)."""
    while True:
        yield from loader


def measure(
    loader: Iterable[dict], num_clips: int, prepare: Callable[[dict], dict] = lambda b: b, dtype=torch.float32
) -> dict:
    """Time ``num_clips`` clips (at least) after one warm-up batch, which absorbs worker start-up.

    ``prepare`` runs on every batch inside the timed loop, so both sides end with the same float
    (B, T, C, H, W) normalised pixels; ``dtype=torch.uint8`` times loader output that is normalised later.
    """
    batches = endless(loader)
    first = prepare(next(batches))["pixel_values"]
    if first.dtype != dtype or first.dim() != 5:
        raise ValueError(f"expected {dtype} (B, T, C, H, W) batches, got {first.dtype} {tuple(first.shape)}")
    clips = 0
    start = time.perf_counter()
    while clips < num_clips:
        clips += prepare(next(batches))["pixel_values"].shape[0]
    seconds = time.perf_counter() - start
    return {"clips": clips, "seconds": round(seconds, 3), "clips_per_s": clips / seconds, "shape": list(first.shape)}
