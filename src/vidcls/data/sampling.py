"""Clip sampling: pure index maths from a frame count to frame indices. No I/O.

A clip takes ``num_frames`` frames every ``sample_rate`` frames, spanning ``span = num_frames * sample_rate``
frames. Examples with num_frames=4, sample_rate=2 (span 8):

    random_clip(20, ...)       -> e.g. [5, 7, 9, 11]         (start drawn from 0..12)
    uniform_clips(20, ..., 3)  -> [0 2 4 6], [6 8 10 12], [12 14 16 18]
    uniform_clips(5, ..., 2)   -> [0 1 3 4]                 (shorter than a clip: one clip, see below)
    uniform_clips(9, ..., 4)   -> [0 2 4 6], [1 3 5 7]      (only 2 distinct starts: no clip twice)

A video shorter than one clip still yields a clip: its frames are spread evenly over the whole video
(the effective sample rate shrinks), repeating frames when it has fewer than ``num_frames``. So every
clip shows the video's whole motion rather than a frozen last frame.
"""

from __future__ import annotations

import numpy as np


def _check(total_frames: int, num_frames: int, sample_rate: int) -> None:
    if total_frames < 1:
        raise ValueError(f"a video needs at least one frame, got total_frames={total_frames}")
    if num_frames < 1 or sample_rate < 1:
        raise ValueError(f"num_frames and sample_rate must be >= 1, got {num_frames} and {sample_rate}")


def _fit_whole_video(total_frames: int, num_frames: int) -> np.ndarray:
    return np.linspace(0, total_frames - 1, num_frames).round().astype(np.int64)


def clip_at(start: int, num_frames: int, sample_rate: int) -> np.ndarray:
    """Indices of the clip that starts at frame ``start``."""
    return start + np.arange(num_frames, dtype=np.int64) * sample_rate


def random_clip(total_frames: int, num_frames: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One clip at a random position (training)."""
    _check(total_frames, num_frames, sample_rate)
    span = num_frames * sample_rate
    if total_frames < span:
        return _fit_whole_video(total_frames, num_frames)
    # The last index of a clip is start + span - sample_rate, so starts up to total - span + sample_rate - 1 fit;
    # keeping to total - span leaves the same room as the guide and PyTorchVideo.
    start = int(rng.integers(0, total_frames - span + 1))
    return clip_at(start, num_frames, sample_rate)


def uniform_clips(total_frames: int, num_frames: int, sample_rate: int, num_clips: int) -> list[np.ndarray]:
    """Up to ``num_clips`` evenly spaced clips over the whole video: the first starts at frame 0, the last ends at
    its end. Never the same clip twice: a video shorter than one clip gives one, and one with fewer starts than
    ``num_clips`` gives one per start, so a short video is decoded, scored and counted once per distinct clip.
    """
    _check(total_frames, num_frames, sample_rate)
    span = num_frames * sample_rate
    if total_frames < span:
        return [_fit_whole_video(total_frames, num_frames)]
    last_start = total_frames - span
    starts = np.linspace(0, last_start, num_clips).round().astype(np.int64) if num_clips > 1 else [last_start // 2]
    return [clip_at(int(s), num_frames, sample_rate) for s in dict.fromkeys(int(s) for s in starts)]
