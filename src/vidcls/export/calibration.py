"""Calibration clips for static int8: a bounded number of views of the user's videos, fed as the graph wants them.

Static quantisation fixes every activation's int8 scale from the ranges it sees while running these clips, so they
must be what the model will see: clips read by ``ClipReader`` exactly as evaluation and prediction read them,
spread over every class and as many videos as the budget allows.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from vidcls.config import ClipSpec
from vidcls.data.clips import ClipReader
from vidcls.data.discovery import scan_split
from vidcls.data.transforms import normalize
from vidcls.errors import ConfigError, VidclsError


def interleaved_videos(folder: Path, flag: str) -> list[Path]:
    """The videos of ``folder/<Class>/<video>``, one of each class in turn, so any prefix covers every class."""
    if not folder.is_dir():
        raise ConfigError(f"{flag} {folder}: no such folder; pass a split folder DIR/<Class>/<video>")
    try:
        classes = scan_split(folder)
    except VidclsError as err:
        raise ConfigError(f"{flag} {folder}: {err}") from err
    rounds = itertools.zip_longest(*classes.values())
    return [path for group in rounds for path in group if path is not None]


def calibration_clips(spec: ClipSpec, folder: str | Path, count: int, *, flag: str = "--eval_data") -> list:
    """Up to ``count`` uint8 clips (T, C, H, W) of the videos under ``folder``, evenly spread over their views.

    With fewer videos than ``count``, each gives ``ceil(count / videos)`` of its evaluation views (evenly
    spaced); with more, the first ``count`` of the class-interleaved order give one each. Videos that cannot be
    decoded are passed over; none decodable is a ConfigError naming ``flag``.
    """
    if count < 1:
        raise ConfigError(f"--calibration_clips must be >= 1, got {count}")
    videos = interleaved_videos(Path(folder), flag)
    per_video = math.ceil(count / len(videos))
    reader = ClipReader(spec)
    clips, failed = [], []
    for video in videos:
        if len(clips) >= count:
            break
        try:
            views = reader.from_file(video)  # (N, T, C, H, W) uint8
        except VidclsError:
            failed.append(video)
            continue
        picks = np.unique(np.linspace(0, len(views) - 1, min(per_video, len(views))).round().astype(int))
        clips.extend(views[i] for i in picks[: count - len(clips)])
    if not clips:
        raise ConfigError(
            f"{flag} {folder}: none of its {len(videos)} videos could be decoded (first: {failed[0]}); "
            "run vidcls check on it, or pass another folder"
        )
    return clips


class ClipFeed:
    """onnxruntime's ``CalibrationDataReader``: one clip per call, as the graph's input declares it.

    A uint8 input gets the decoded pixels as they are (the graph normalises them itself); a float input gets
    them normalised with the model's mean and std, as ``Predictor.logits`` does.
    """

    def __init__(self, clips: list, input_name: str, input_is_uint8: bool, spec: ClipSpec):
        self.clips, self.input_name, self.uint8, self.spec = clips, input_name, input_is_uint8, spec
        self.position = 0

    def get_next(self) -> dict | None:
        if self.position == len(self.clips):
            return None
        clip = self.clips[self.position][None]  # (T, C, H, W) -> (1, T, C, H, W)
        self.position += 1
        pixels = clip if self.uint8 else normalize(clip, self.spec.mean, self.spec.std)
        return {self.input_name: pixels.numpy()}

    def rewind(self) -> None:
        self.position = 0

    def __len__(self) -> int:
        return len(self.clips)
