"""The scores of a video, the data half: which clips a video is scored from, read as the model sees them, and how
their class scores become the video's.

Every command that scores a video goes through here: evaluation (also during training), prediction, serving,
``vidcls show`` and the export checks, on one machine or on Ray. ``transformers.pipeline("video-classification")``
stretches one clip of ``num_frames`` frames over the whole video (16 frames of a 10 min video are 37 s apart, so
motion between them is lost); ``ClipReader`` covers the whole video with ``views.clips`` clips of ``num_frames``
frames every ``sample_rate`` frames, resized exactly as in training, and ``video_scores`` averages their class
probabilities, as VideoMAE tests (https://arxiv.org/abs/2203.12602, section 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidcls.config import ClipSpec, EvalViews
from vidcls.data.backends import get_reader
from vidcls.data.decode import VideoInfo, probe
from vidcls.data.sampling import uniform_clips
from vidcls.data.transforms import EvalCrops, decode_size, to_video_tensor
from vidcls.errors import DecodeError

# Clips further apart than this are read with a seek each rather than one pass decoding the gap: a seek
# decodes at most a keyframe interval (usually 0.5-5 s), so decoding a longer gap is never cheaper.
SEEK_GAP_S = 3.0


def segment(info: VideoInfo, start: float | None = None, end: float | None = None) -> tuple[int, int]:
    """First frame and frame count of the part of a video between ``start`` and ``end`` seconds (all of it by
    default), never empty: a segment past the end is the last frame."""
    first = 0 if start is None else min(info.num_frames - 1, max(0, round(start * info.fps)))
    stop = info.num_frames if end is None else min(info.num_frames, round(end * info.fps))
    return first, max(1, stop - first)


class ClipReader:
    """The evaluation views of a video as the model sees them before normalisation: uint8 (N, T, C, H, W).

    N = clips x crops, each clip's crops next to each other. Holds no model, so decoding workers and Ray tasks
    get a cheap copy.

    Example:
        >>> reader = ClipReader(ClipSpec(num_frames=16, sample_rate=4, image_size=224), EvalViews(clips=4))
        >>> reader.from_file("v_ApplyEyeMakeup_g01_c01.avi").shape
        torch.Size([4, 16, 3, 224, 224])
    """

    def __init__(self, spec: ClipSpec, views: EvalViews = EvalViews(), *, decoder: str = "pyav"):
        self.spec = spec
        self.views = views
        self.crop = EvalCrops(spec, views.crops)
        self.decode_size = decode_size(spec, train=False, num_crops=views.crops)  # the crops then only cut
        self.read_frames = get_reader(decoder)

    def clip_indices(self, info: VideoInfo, start: float | None = None, end: float | None = None) -> list[np.ndarray]:
        """Frame numbers of each clip: up to ``views.clips`` evenly spaced over the segment, never one twice."""
        first, count = segment(info, start, end)
        spec = self.spec
        return [first + clip for clip in uniform_clips(count, spec.num_frames, spec.sample_rate, self.views.clips)]

    def from_file(
        self, path: str | Path, info: VideoInfo | None = None, *, start: float | None = None, end: float | None = None
    ) -> torch.Tensor:
        """Every view of a video file (or of its ``start``-``end`` segment); DecodeError if a clip cannot be read.

        Nearby clips are decoded in one pass, distant ones after a seek each.
        """
        info = info or probe(path)
        clips = self.clip_indices(info, start, end)
        runs, gap = [[clips[0]]], SEEK_GAP_S * info.fps
        for clip in clips[1:]:
            if clip[0] - runs[-1][-1][-1] > gap:
                runs.append([])
            runs[-1].append(clip)
        size = self.decode_size
        frames = np.concatenate([self.read_frames(path, np.concatenate(run), info, size=size) for run in runs])
        # (N*T, H, W, 3) -> (N, T, H, W, 3)
        return self.to_views(frames.reshape(len(clips), self.spec.num_frames, *frames.shape[1:]))

    def readable_views(
        self, path: str | Path, info: VideoInfo | None = None, *, start: float | None = None, end: float | None = None
    ) -> tuple[torch.Tensor, str | None]:
        """The views of the clips that decode, and why the others did not (None when all did).

        A file cut short still opens and fails only where later clips are taken: it is scored from the clips before
        the cut, and the reason is reported. DecodeError when no clip decodes.
        """
        info = info or probe(path)
        try:
            return self.from_file(path, info, start=start, end=end), None
        except DecodeError as err:
            problem = err
        views = []
        for clip in self.clip_indices(info, start, end):
            try:
                views.append(self.to_views(self.read_frames(path, clip, info, size=self.decode_size)[None]))
            except DecodeError as err:
                problem = err
        if not views:
            raise problem
        return torch.cat(views), str(problem)

    def from_frames(self, frames) -> torch.Tensor:
        """The views of decoded frames (T, H, W, 3), uint8 NumPy array or tensor, sampled as for a file."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        spec = self.spec
        clips = uniform_clips(len(frames), spec.num_frames, spec.sample_rate, self.views.clips)
        return self.to_views(np.stack([frames[i] for i in clips]))

    def to_views(self, clips: np.ndarray) -> torch.Tensor:
        """(N, T, H, W, 3) uint8 clips -> (N * crops, T, C, H, W) uint8 views, each clip's crops together."""
        views = [view.as_subclass(torch.Tensor) for clip in clips for view in self.crop(to_video_tensor(clip))]
        return torch.stack(views)


def video_scores(logits, video_index) -> tuple[np.ndarray, np.ndarray]:
    """Class scores of videos from the logits of their views: softmax per view, mean per video.

    ``logits`` (N, K) and ``video_index`` (N,) (NumPy arrays or CPU tensors) -> (the V video ids in increasing
    order, (V, K) float64 scores). Example: views of videos [7, 7, 3] -> ids [3, 7], the second row the mean of
    the first two views' probabilities.
    """
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = exp / exp.sum(axis=-1, keepdims=True)
    videos, inverse = np.unique(np.asarray(video_index), return_inverse=True)
    sums = np.zeros((len(videos), probs.shape[1]))
    np.add.at(sums, inverse, probs)
    return videos, sums / np.bincount(inverse, minlength=len(videos))[:, None]


def mean_scores(logits) -> np.ndarray:
    """The class scores (K,) of one video from the logits (N, K) of its views: ``video_scores`` of one video."""
    return video_scores(logits, np.zeros(len(logits), dtype=np.int64))[1][0]
