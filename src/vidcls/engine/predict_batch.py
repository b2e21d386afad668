"""Predicting many videos: inputs from files, folders and globs, decoded in worker processes, batched model calls.

Each DataLoader item is one video's clips (or the reason it could not be read), so a bad file becomes an
error record and the rest go on. Clips of consecutive videos share model calls of ``batch_size`` clips;
records come out in input order.
"""

from __future__ import annotations

import glob
import logging
import os
from collections import deque
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vidcls.data.discovery import VIDEO_EXTENSIONS
from vidcls.engine.predict import ClipReader
from vidcls.errors import ConfigError, DecodeError

logger = logging.getLogger(__name__)


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files as given; folders searched recursively for videos; glob patterns expanded (both sorted).

    A path that exists nowhere is kept as it is, so that it gets an error record like any unreadable file.
    """
    videos = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                logger.warning("no videos under %s (looked for %s)", item, " ".join(VIDEO_EXTENSIONS))
            videos += found
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
            videos += matches or [item]
        else:
            videos.append(item)
    if not videos:
        raise ConfigError(f"no videos in {' '.join(inputs)}; pass video files, folders or glob patterns")
    return videos


class VideoInputs(torch.utils.data.Dataset):
    """One item per video: ``{"index", "video", "clips": uint8 (N, T, C, H, W)}`` or ``{"index", "video", "error"}``."""

    def __init__(self, videos: list[str], reader: ClipReader):
        self.videos = videos
        self.reader = reader

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        video = str(self.videos[index])
        try:
            return {"index": index, "video": video, "clips": self.reader.from_file(video)}
        except DecodeError as err:
            logger.warning("cannot predict %s", err)
            return {"index": index, "video": video, "error": str(err)}


def model_threads(device: torch.device, num_workers: int) -> int:
    """Threads for model calls on a CPU: the cores the decoding workers leave free.

    More threads than free cores make OpenMP threads spin-wait against the workers: with 2 workers on 2 cores,
    2 model threads made a whole run 25% slower than 1 (benchmarks/predict.py).
    """
    if device.type != "cpu" or num_workers == 0:
        return torch.get_num_threads()
    return max(1, min(torch.get_num_threads(), len(os.sched_getaffinity(0)) - num_workers))


def collate_videos(items: list[dict]) -> list[dict]:
    """Keep each video's clips (and error records) apart: clips are batched across videos at model time."""
    return items


def predict_records(
    predictor, videos: list[str], *, top_k: int = 5, batch_size: int = 16, num_workers: int = 2, progress: bool = False
):
    """Yield ``{"video", "predictions": [{"label", "score"}]}`` or ``{"video", "error"}`` per video, in input order.

    Class probabilities are averaged over each video's clips, as ``Predictor.predict`` does.
    """
    if batch_size < 1 or num_workers < 0:
        raise ConfigError(f"--batch_size must be >= 1 and --num_workers >= 0, got {batch_size} and {num_workers}")
    loader = torch.utils.data.DataLoader(
        VideoInputs(videos, predictor.reader),
        batch_size=max(1, batch_size // predictor.spec.eval_clips),  # about one model call of videos per item
        num_workers=num_workers,
        collate_fn=collate_videos,
    )
    pending: deque[dict] = deque()  # videos whose record is not out yet, in input order
    clips: list[torch.Tensor] = []  # (T, C, H, W) clips waiting for a model call ...
    owners: list[dict] = []  # ... and the pending video each belongs to

    threads = model_threads(predictor.device, num_workers)

    def score(count: int) -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)  # set and restored around each call: the caller's setting is left alone
        try:
            probs = predictor.logits(torch.stack(clips[:count])).softmax(-1)  # (count, T, C, H, W) -> (count, K)
        finally:
            torch.set_num_threads(previous)
        for owner, p in zip(owners[:count], probs, strict=True):
            owner["sum"] = owner["sum"] + p
            owner["left"] -= 1
        del clips[:count], owners[:count]

    def finished():
        while pending and ("error" in pending[0] or pending[0]["left"] == 0):
            entry = pending.popleft()
            if "error" in entry:
                yield {"video": entry["video"], "error": entry["error"]}
            else:
                yield {"video": entry["video"], "predictions": predictor.top_k(entry["sum"] / entry["n"], top_k)}

    with tqdm(total=len(videos), unit="video", desc="predicting", disable=not progress) as bar:
        for items in loader:
            for item in items:
                if "error" in item:
                    pending.append(item)
                    continue
                entry = {"video": item["video"], "sum": 0.0, "n": len(item["clips"]), "left": len(item["clips"])}
                pending.append(entry)
                clips.extend(item["clips"])
                owners.extend([entry] * len(item["clips"]))
            while len(clips) >= batch_size:
                score(batch_size)
            for record in finished():
                bar.update()
                yield record
        if clips:
            score(len(clips))
        for record in finished():
            bar.update()
            yield record
