"""Predicting many videos: inputs from files, folders and globs, scored by ``engine.scoring``, as records of their
top-k labels (or the reason a video could not be read), in input order.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator
from pathlib import Path

from vidcls.data.clips import mean_scores
from vidcls.data.discovery import VIDEO_EXTENSIONS
from vidcls.engine.scoring import ScoredVideo, score
from vidcls.errors import ConfigError

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


def predict_records(
    predictor,
    videos: list[str],
    *,
    top_k: int = 5,
    batch_size: int = 16,
    num_workers: int | None = None,
    progress: bool = False,
    ray=None,
) -> Iterator[dict]:
    """Yield ``{"video", "predictions": [{"label", "score"}]}`` or ``{"video", "error"}`` per video, in input order
    (with ``ray``, an ``engine.ray_engine.RayEngine``: on a Ray cluster, in the order videos finish).

    Scored by ``engine.scoring.score``, as ``Predictor.predict`` scores one video.
    """
    progress = "predicting" if progress else None
    scored = score(predictor, videos, batch_size=batch_size, num_workers=num_workers, progress=progress, ray=ray)
    for video in scored:
        yield as_record(predictor, video, top_k)


def as_record(predictor, video: ScoredVideo, top_k: int) -> dict:
    """A prediction record: the video's top-k labels, or its error."""
    if video.error is not None:
        return {"video": video.video, "error": video.error}
    return {"video": video.video, "predictions": predictor.top_k(mean_scores(video.logits), top_k)}
