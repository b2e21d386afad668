"""The scores of many videos in one process: views decoded in worker processes, batched model calls.

Each DataLoader item is one video's views (or the reason it could not be read), so a bad file becomes an error
and the rest go on. Views of consecutive videos share model calls of ``batch_size`` views; videos come out in
input order, each with the logits of its views. Prediction turns them into labels, evaluation into metrics;
``engine/ray_engine.py`` is the same on a Ray cluster.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from vidcls.data.clips import ClipReader
from vidcls.data.discovery import VideoRecord
from vidcls.engine.workers import choose_workers, local_cores, model_threads
from vidcls.errors import ConfigError, DecodeError

logger = logging.getLogger(__name__)

# With --num_workers unset, this many videos (at least a model call's worth) are decoded inline and timed first.
PROBE_VIDEOS = 4


@dataclass
class ScoredVideo:
    """One video's outcome: the logits of its views, or why it has none."""

    index: int  # its position in the input
    video: str  # its path
    logits: np.ndarray | None = None  # float32 (N, K), one row per view
    error: str | None = None  # why it was not scored
    problem: str | None = None  # scored from only some of its clips: why the others were not


def segment_of(video: str | VideoRecord) -> tuple[str, float | None, float | None]:
    """A video's path and the seconds to score it between (None: from its start, to its end)."""
    return (str(video.path), video.start, video.end) if isinstance(video, VideoRecord) else (str(video), None, None)


def read_views(
    reader: ClipReader, path: str, start: float | None = None, end: float | None = None, *, partial: bool = False
) -> tuple[torch.Tensor, str | None]:
    """The views of a video, and why some are missing (None when all decoded; only with ``partial``, which scores a
    file cut short from the clips before the cut). DecodeError when the video cannot be scored."""
    if partial:
        return reader.readable_views(path, start=start, end=end)
    return reader.from_file(path, start=start, end=end), None


class VideoViews(torch.utils.data.Dataset):
    """One item per video: ``{"index", "video", "views": uint8 (N, T, C, H, W), "problem"}`` or
    ``{"index", "video", "error"}``.

    ``videos`` are paths or ``VideoRecord`` (a record may cover a segment). With ``partial`` a file cut short is
    scored from the clips that decode (evaluation); without, any failing clip makes the video an error (prediction).
    """

    def __init__(self, videos: list[str | VideoRecord], reader: ClipReader, *, partial: bool = False):
        self.videos = videos
        self.reader = reader
        self.partial = partial

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        path, start, end = segment_of(self.videos[index])
        item = {"index": index, "video": str(path)}
        try:
            item["views"], item["problem"] = read_views(self.reader, path, start, end, partial=self.partial)
        except DecodeError as err:
            logger.warning("cannot score %s", err)
            item["error"] = str(err)
        return item


def keep_apart(items: list[dict]) -> list[dict]:
    """The DataLoader's collate: each video's views stay apart; they are batched across videos at model time."""
    return items


def read_ahead(items: Iterable) -> Iterator:
    """``items``, each produced in a background thread while the caller works on the one before.

    Without decoding workers this overlaps reading the next videos with the model call on these: PyAV and torch
    release the GIL while they work, so on 2 cores a model-bound run (224 px) ran 1.3x as fast
    (benchmarks/predict.py). One item ahead at most: memory holds one more batch of views.
    """
    end = object()
    iterator = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix="vidcls-read-ahead") as pool:
        ahead = pool.submit(next, iterator, end)
        while (item := ahead.result()) is not end:
            ahead = pool.submit(next, iterator, end)
            yield item


def score_videos(
    predictor,
    videos: list[str | VideoRecord],
    *,
    batch_size: int = 16,
    num_workers: int | None = None,
    partial: bool = False,
    progress: str | None = None,
) -> Iterator[ScoredVideo]:
    """Score every video with ``predictor`` (``engine.predict.Predictor``); yield them in input order.

    ``batch_size`` counts views per model call; ``num_workers`` decoding processes, or None: the first videos are
    decoded here and timed, with their model call, and ``choose_workers`` picks the workers for the rest.
    ``progress`` is the progress bar's label (None: no bar).
    """
    if batch_size < 1 or (num_workers is not None and num_workers < 0):
        raise ConfigError(f"--batch_size must be >= 1 and --num_workers >= 0, got {batch_size} and {num_workers}")
    dataset = VideoViews(videos, predictor.reader, partial=partial)
    views_per_video = predictor.reader.views.clips * predictor.reader.views.crops
    videos_per_item = max(1, batch_size // views_per_video)  # about one model call of videos per item
    threads = torch.get_num_threads()  # inline: the model has every core
    pending: deque[dict] = deque()  # videos not yet out, in input order, each with its views' logits so far
    views: list[torch.Tensor] = []  # (T, C, H, W) views waiting for a model call ...
    owners: list[dict] = []  # ... and the pending video each belongs to

    def take(items: list[dict]) -> None:
        for item in items:
            pending.append(item)
            if "error" not in item:
                item.update(logits=[], count=len(item["views"]))
                views.extend(item.pop("views"))
                owners.extend([item] * item["count"])

    def call_model(count: int) -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)  # set and restored around each call: the caller's setting is left alone
        try:
            logits = predictor.logits(torch.stack(views[:count])).numpy()  # (count, T, C, H, W) -> (count, K)
        finally:
            torch.set_num_threads(previous)
        for owner, row in zip(owners[:count], logits, strict=True):
            owner["logits"].append(row)
        del views[:count], owners[:count]

    def finished() -> Iterator[ScoredVideo]:
        while pending and ("error" in pending[0] or len(pending[0]["logits"]) == pending[0]["count"]):
            item = pending.popleft()
            if "error" in item:
                yield ScoredVideo(item["index"], item["video"], error=item["error"])
            else:
                yield ScoredVideo(item["index"], item["video"], np.stack(item["logits"]), problem=item["problem"])

    with tqdm(total=len(videos), unit="video", desc=progress, disable=progress is None) as bar:
        first = 0
        if num_workers is None:  # time the first videos inline, then choose
            first = min(len(dataset), max(PROBE_VIDEOS, videos_per_item))
            started = time.perf_counter()
            take([dataset[index] for index in range(first)])
            decoded = time.perf_counter()
            if views:
                call_model(len(views))
            decode_s, model_s = decoded - started, time.perf_counter() - decoded
            cores = local_cores()
            num_workers = choose_workers(decode_s / max(1, first), max(model_s, 1e-6) / max(1, first), cores)
            num_workers = num_workers if first < len(dataset) else 0  # no worker to start for no video left
            logger.info(
                "decoding %.0f ms and the model %.0f ms a video on %d cores: %d decoding workers (--num_workers)",
                1000 * decode_s / max(1, first), 1000 * model_s / max(1, first), cores, num_workers,
            )  # fmt: skip
            for scored in finished():
                bar.update()
                yield scored
        threads = model_threads(predictor.device, num_workers)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(dataset, range(first, len(dataset))),
            batch_size=videos_per_item,
            num_workers=num_workers,
            collate_fn=keep_apart,
        )
        # Worker processes already decode ahead of the model; inline, a thread does.
        for items in loader if num_workers else read_ahead(loader):
            take(items)
            while len(views) >= batch_size:
                call_model(batch_size)
            for scored in finished():
                bar.update()
                yield scored
        if views:
            call_model(len(views))
        for scored in finished():
            bar.update()
            yield scored


def score(
    predictor,
    videos: list[str | VideoRecord],
    *,
    batch_size: int = 16,
    num_workers: int | None = None,
    partial: bool = False,
    progress: str | None = None,
    ray=None,
) -> Iterator[ScoredVideo]:
    """Where every command scores videos: in this process (``score_videos``, input order), or with ``ray`` (an
    ``engine.ray_engine.RayEngine``) on a Ray cluster (``score_videos_ray``, in the order videos finish)."""
    if ray is None:
        return score_videos(
            predictor, videos, batch_size=batch_size, num_workers=num_workers, partial=partial, progress=progress
        )
    return ray.score(predictor, videos, batch_size=batch_size, partial=partial, progress=progress)
