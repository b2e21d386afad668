"""A map-style dataset of clips (it has ``__len__``, so the Trainer counts epochs by itself).

Training yields one random clip per video per epoch; evaluation yields the clips ``ClipReader`` scores a video
from, one per item (the Trainer batches items), each tagged with its video's index so scores can be averaged per
video. With 3 crops an evaluation item holds the three spatial crops of its clip, decoded once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidcls.config import Augmentation, ClipSpec, EvalViews
from vidcls.data.backends import get_reader
from vidcls.data.cache import FrameCache
from vidcls.data.clips import ClipReader, segment
from vidcls.data.decode import VideoInfo, probe, read_frames
from vidcls.data.discovery import VideoRecord
from vidcls.data.sampling import random_clip
from vidcls.data.transforms import build_transform, decode_size, to_video_tensor
from vidcls.errors import DecodeError

logger = logging.getLogger(__name__)

# Verifying decodes one frame this small: enough to find where the file breaks.
VERIFY_SIDE = 16
# A training sample whose video fails to decode is replaced by another video, at most this many times.
MAX_REPLACEMENTS = 10


@dataclass(frozen=True)
class SkippedVideo:
    path: str
    reason: str


def probe_all(
    records: list[VideoRecord], verify: bool = False
) -> tuple[list[VideoRecord], list[VideoInfo], list[SkippedVideo]]:
    """Open every video once; those that cannot be read are set aside with the reason, never fatal.

    ``verify`` also decodes each video's last frame (of its segment), which finds files cut short: they open,
    and fail only where later clips are taken.
    """
    kept, infos, skipped = [], [], []
    for record in records:
        try:
            info = probe(record.path)
            if verify:
                last = info.num_frames if record.end is None else min(info.num_frames, round(record.end * info.fps))
                read_frames(record.path, [max(0, last - 1)], info, size=VERIFY_SIDE)
            infos.append(info)
            kept.append(record)
        except DecodeError as err:
            logger.warning("skipping %s", err)
            skipped.append(SkippedVideo(str(record.path), str(err)))
    return kept, infos, skipped


class ClipDataset(torch.utils.data.Dataset):
    """Clips of labelled videos as ``{"video": uint8 (T, C, H, W), "label": int, "video_index": int}``.

    With 3 crops (evaluation only) "video" is uint8 (3, T, C, H, W): the clip's three spatial crops.

    Args:
        records: the labelled videos.
        spec: clip sampling and size.
        train: one random, augmented clip per video (True) or the evaluation clips of ``views`` (False).
        augmentation: how training varies its clips (scale, flip).
        views: the evaluation clips and crops of each video (``ClipReader``).
        cache: keep decoded frames on disk for later epochs (filled as clips are read, see ``FrameCache``).
        failure_log: a JSON-lines file where clips that fail to decode are recorded (from any worker process).
        decoder: "pyav" or "torchcodec" (falls back to PyAV when it cannot load).
        verify: also decode each video's last frame up front, so files cut short are skipped from the start.
    """

    def __init__(
        self,
        records: list[VideoRecord],
        spec: ClipSpec,
        *,
        train: bool,
        cache: FrameCache | None = None,
        failure_log: str | Path | None = None,
        decoder: str = "pyav",
        augmentation: Augmentation = Augmentation(),
        views: EvalViews = EvalViews(),
        verify: bool = False,
    ):
        self.records, self.infos, self.skipped = probe_all(records, verify)
        self.spec = spec
        self.train = train
        self.cache = cache
        self.read_frames = get_reader(decoder)
        self.failure_log = Path(failure_log) if failure_log else None
        self._logged: set[str] = set()
        self.transform = build_transform(spec, train=True, augmentation=augmentation) if train else None
        self.reader = None if train else ClipReader(spec, views, decoder=decoder)
        # Frames are decoded at the size the transforms need (training: each clip's drawn short side) and
        # cached at the largest of them.
        self.decode_size = (
            decode_size(spec, train=True, augmentation=augmentation) if train else self.reader.decode_size
        )
        # Evaluation clips of each video: up to views.clips, never the same clip twice (a short video has one).
        self.eval_clips = [] if train else [self._eval_clips(v) for v in range(len(self.records))]
        # (video index, clip number) for each item.
        self.items = [(v, c) for v in range(len(self.records)) for c in range(1 if train else len(self.eval_clips[v]))]

    def __len__(self) -> int:
        return len(self.items)

    def clip_indices(self, video: int, clip: int) -> np.ndarray:
        if not self.train:
            return self.eval_clips[video][clip]
        record = self.records[video]
        first, count = segment(self.infos[video], record.start, record.end)
        # Seeded from torch so each DataLoader worker and each epoch draws different clips.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))
        return first + random_clip(count, self.spec.num_frames, self.spec.sample_rate, rng)

    def _eval_clips(self, video: int) -> list[np.ndarray]:
        record = self.records[video]
        return self.reader.clip_indices(self.infos[video], record.start, record.end)

    def load(self, index: int) -> dict:
        video, clip = self.items[index]
        record = self.records[video]
        indices = self.clip_indices(video, clip)
        info = self.infos[video]
        if self.train:
            short_side = self.transform.draw_short_side()
            frames = None
            if self.cache:  # every frame a clip may need, at the largest short side, from the first miss on
                first, count = segment(info, record.start, record.end)
                frames = self.cache.read_segment(record.path, info, indices, self.decode_size, first, count)
            if frames is None:
                frames = self.read_frames(record.path, indices, info, size=short_side)
        elif self.cache:  # exactly this clip, lossless: stored by the read that missed
            frames = self.cache.read_clip(record.path, info, indices, self.decode_size, read=self.read_frames)
        else:
            frames = self.read_frames(record.path, indices, info, size=self.decode_size)
        if self.train:
            clip_tensor = self.transform(to_video_tensor(frames).as_subclass(torch.Tensor), short_side)
        else:
            views = self.reader.to_views(frames[None])  # (T, H, W, 3) -> (V, T, C, H, W)
            clip_tensor = views[0] if len(views) == 1 else views  # 1 view: (T, C, H, W) as in training
        return {"video": clip_tensor, "label": record.label, "video_index": video}

    def _record_failure(self, index: int, err: DecodeError) -> None:
        path = str(self.records[self.items[index][0]].path)
        if path in self._logged:
            return
        self._logged.add(path)  # once per video and process
        logger.warning("skipping a clip: %s", err)
        if self.failure_log:
            with self.failure_log.open("a") as log:  # one short append per line: safe across workers
                log.write(json.dumps({"path": path, "reason": str(err)}) + "\n")

    def __getitem__(self, index: int) -> dict | None:
        try:
            return self.load(index)
        except DecodeError as err:
            self._record_failure(index, err)
            if not self.train:
                return None  # evaluation drops it; its video is scored from its other clips, if any
        # Training keeps its batch size: take another video instead.
        rng = np.random.default_rng(index)
        for replacement in rng.integers(0, len(self.items), MAX_REPLACEMENTS):
            try:
                return self.load(int(replacement))
            except DecodeError as err:
                self._record_failure(int(replacement), err)
        raise DecodeError(f"{MAX_REPLACEMENTS + 1} videos in a row failed to decode; check the dataset")
