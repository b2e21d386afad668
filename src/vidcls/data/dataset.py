"""A map-style dataset of clips (it has ``__len__``, so the Trainer counts epochs by itself).

Training yields one random clip per video per epoch; evaluation yields ``eval_clips`` evenly spaced clips
per video, each tagged with its video's index so scores can be averaged per video.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from vidcls.config import ClipSpec
from vidcls.data.decode import VideoInfo, probe, read_frames
from vidcls.data.discovery import VideoRecord
from vidcls.data.sampling import random_clip, uniform_clips
from vidcls.data.transforms import build_transform, decode_short_side, to_video_tensor
from vidcls.errors import DecodeError

logger = logging.getLogger(__name__)

# A training sample whose video fails to decode is replaced by another video, at most this many times.
MAX_REPLACEMENTS = 10


@dataclass(frozen=True)
class SkippedVideo:
    path: str
    reason: str


def probe_all(records: list[VideoRecord]) -> tuple[list[VideoRecord], list[VideoInfo], list[SkippedVideo]]:
    """Open every video once; those that cannot be read are set aside with the reason, never fatal."""
    kept, infos, skipped = [], [], []
    for record in records:
        try:
            infos.append(probe(record.path))
            kept.append(record)
        except DecodeError as err:
            logger.warning("skipping %s", err)
            skipped.append(SkippedVideo(str(record.path), str(err)))
    return kept, infos, skipped


class ClipDataset(torch.utils.data.Dataset):
    """Clips of labelled videos as ``{"video": uint8 (T, C, H, W), "label": int, "video_index": int}``.

    Args:
        records: the labelled videos.
        spec: clip sampling and size.
        train: one random, augmented clip per video (True) or ``spec.eval_clips`` uniform clips (False).
    """

    def __init__(self, records: list[VideoRecord], spec: ClipSpec, *, train: bool):
        self.records, self.infos, self.skipped = probe_all(records)
        self.spec = spec
        self.train = train
        self.transform = build_transform(spec, train=train)
        self.short_side = decode_short_side(spec, train=train)
        clips_per_video = 1 if train else spec.eval_clips
        # (video index, clip number) for each item.
        self.items = [(v, c) for v in range(len(self.records)) for c in range(clips_per_video)]

    def __len__(self) -> int:
        return len(self.items)

    def clip_indices(self, video: int, clip: int) -> np.ndarray:
        info, spec = self.infos[video], self.spec
        if self.train:
            # Seeded from torch so each DataLoader worker and each epoch draws different clips.
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))
            return random_clip(info.num_frames, spec.num_frames, spec.sample_rate, rng)
        return uniform_clips(info.num_frames, spec.num_frames, spec.sample_rate, spec.eval_clips)[clip]

    def load(self, index: int) -> dict:
        video, clip = self.items[index]
        record = self.records[video]
        frames = read_frames(record.path, self.clip_indices(video, clip), self.infos[video], self.short_side)
        clip_tensor = self.transform(to_video_tensor(frames))  # (T, C, H, W) uint8
        return {"video": clip_tensor.as_subclass(torch.Tensor), "label": record.label, "video_index": video}

    def __getitem__(self, index: int) -> dict | None:
        try:
            return self.load(index)
        except DecodeError as err:
            logger.warning("skipping a clip: %s", err)
            if not self.train:
                return None  # evaluation drops it; its video is scored from its other clips, if any
        # Training keeps its batch size: take another video instead.
        rng = np.random.default_rng(index)
        for replacement in rng.integers(0, len(self.items), MAX_REPLACEMENTS):
            try:
                return self.load(int(replacement))
            except DecodeError as err:
                logger.warning("skipping a clip: %s", err)
        raise DecodeError(f"{MAX_REPLACEMENTS + 1} videos in a row failed to decode; check the dataset")
