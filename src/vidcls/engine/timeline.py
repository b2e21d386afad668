"""Timeline of a long video: a window slides over the whole video, each window gets its top class, and
neighbouring windows with the same class merge into segments.

Frames are streamed in one sequential decoding pass (``decode.stream_frames``); only the frames of the
windows not yet scored are held, and clips go to the model ``batch_size`` at a time, so memory stays flat
whether the video lasts a minute or an hour.

Example with window 2 s, stride 1 s over a 5 s video: windows [0, 2], [1, 3], [2, 4], [3, 5]; labels
A, A, B, B give the segments A [0, 2) and B [2, 5] (a segment ends where the next one starts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidcls.config import ClipSpec
from vidcls.data.clips import video_scores
from vidcls.data.decode import FrameSize, VideoInfo, probe, stream_frames
from vidcls.data.sampling import uniform_clips
from vidcls.errors import ConfigError
from vidcls.settings import MAX_WINDOWS


@dataclass(frozen=True)
class Window:
    start: float  # seconds
    end: float
    indices: np.ndarray  # frame numbers of its clip, increasing


FRAME_SLACK = 0.99  # window and stride must span a frame, give or take rounding (1/30 s written 0.033)


def plan_windows(
    info: VideoInfo, spec: ClipSpec, window_s: float, stride_s: float, *, max_windows: int = MAX_WINDOWS
) -> list[Window]:
    """Windows every ``stride_s`` from 0, plus one ending at the video's end if the grid leaves a tail uncovered.

    Each window's clip is sampled as ``uniform_clips`` samples one clip of the window's frames: ``num_frames``
    every ``sample_rate`` frames in its middle, or spread over it when the window is shorter than a clip.

    Raises:
        ConfigError: a window or stride shorter than one frame, or more than ``max_windows`` windows; checked
            before any window is built, so a stride of 1e-9 s costs nothing.
    """
    check_windows(info, window_s, stride_s, max_windows)
    duration = info.duration
    window_s = min(window_s, duration)
    starts = list(np.arange(0.0, duration - window_s + 1e-6, stride_s))
    if starts[-1] + window_s < duration - 1.0 / info.fps:
        starts.append(duration - window_s)
    windows = []
    for start in starts:
        first = min(round(start * info.fps), info.num_frames - 1)
        count = max(1, min(round(window_s * info.fps), info.num_frames - first))
        clip = first + uniform_clips(count, spec.num_frames, spec.sample_rate, 1)[0]
        windows.append(Window(float(start), float(start + window_s), clip))
    return windows


def timeline_steps(
    info: VideoInfo, spec: ClipSpec, window_s: float | None = None, stride_s: float | None = None
) -> tuple[float, float]:
    """(window, stride) in seconds, defaults filled in: one clip's span, and windows side by side."""
    window_s = window_s or spec.span / info.fps
    return window_s, stride_s or window_s


def check_windows(info: VideoInfo, window_s: float, stride_s: float, max_windows: int = MAX_WINDOWS) -> int:
    """The number of windows ``plan_windows`` makes, or ConfigError naming the limit it would break.

    Example: a 10 s video at 25 fps takes windows and strides of at least 0.04 s; window 2 s, stride 1 s
    make 9 windows; stride 0.0001 s is refused (shorter than a frame), and so is stride 0.04 s with
    ``max_windows=100`` (250 windows).
    """
    if not (math.isfinite(window_s) and math.isfinite(stride_s) and window_s > 0 and stride_s > 0):
        raise ConfigError(f"window and stride must be positive seconds, got {window_s:g} and {stride_s:g}")
    frame = 1.0 / info.fps
    for name, seconds in (("window", window_s), ("stride", stride_s)):
        if seconds < FRAME_SLACK * frame:
            raise ConfigError(
                f"{name} {seconds:g} s is shorter than one frame of this video ({frame:.4g} s at {info.fps:g} fps): "
                f"pass at least {frame:.4g}"
            )
    window_s = min(window_s, info.duration)
    count = max(1, math.ceil((info.duration - window_s + 1e-6) / stride_s))  # len(np.arange(...)), 1 at least
    count += (count - 1) * stride_s + window_s < info.duration - frame  # the window covering the tail
    if count > max_windows:
        raise ConfigError(
            f"window {window_s:g} s every {stride_s:g} s makes {count} windows over this {info.duration:.1f} s "
            f"video, over the {max_windows} limit (--max_windows): pass a longer stride"
        )
    return count


def window_clips(
    path, info: VideoInfo, windows: list[Window], size: FrameSize, should_stop: Callable[[], bool] = lambda: False
) -> Iterator[np.ndarray]:
    """Yield each window's frames, uint8 (T, H, W, 3), in order, from one streaming pass over the video.

    ``should_stop`` is asked after every decoded frame: once it says True, ``CancelledError`` is raised.
    """
    wanted = np.unique(np.concatenate([w.indices for w in windows]))
    held: dict[int, np.ndarray] = {}  # frame number -> frame, only for windows not yet yielded
    next_window = 0
    for number, (_, frame) in zip(wanted.tolist(), stream_frames(path, wanted, info, size=size), strict=True):
        if should_stop():
            raise CancelledError
        held[number] = frame
        while next_window < len(windows) and windows[next_window].indices[-1] <= number:
            yield np.stack([held[int(i)] for i in windows[next_window].indices])
            next_window += 1
            # Window starts only grow, so frames before the next window's first are never needed again.
            keep_from = windows[next_window].indices[0] if next_window < len(windows) else number + 1
            for old in [n for n in held if n < keep_from]:
                del held[old]


def merge_segments(windows: list[Window], labels: list[str], scores: list[float]) -> list[dict]:
    """Runs of neighbouring windows with the same label -> ``{label, start, end, score}`` (score: their mean)."""
    segments = []
    for window, label, score in zip(windows, labels, scores, strict=True):
        if segments and segments[-1]["label"] == label:
            segments[-1]["end"] = window.end
            segments[-1]["scores"].append(score)
        else:
            if segments:  # overlapping windows: the previous segment ends where this one starts
                segments[-1]["end"] = min(segments[-1]["end"], window.start)
            segments.append({"label": label, "start": window.start, "end": window.end, "scores": [score]})
    return [
        {
            "label": s["label"],
            "start": round(s["start"], 3),
            "end": round(s["end"], 3),
            "score": float(np.mean(s["scores"])),
        }
        for s in segments
    ]


def predict_timeline(
    predictor,
    path: str | Path,
    window_s: float | None = None,
    stride_s: float | None = None,
    *,
    batch_size: int = 16,
    max_windows: int = MAX_WINDOWS,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Label every window of a video and merge them into segments.

    Args:
        predictor: a ``Predictor``.
        window_s: window length in seconds (default: one clip's span at the video's fps).
        stride_s: seconds between window starts (default: the window length, windows side by side).
        max_windows: the most windows accepted (see ``check_windows``).
        should_stop: asked after each decoded frame and before each model call; once it says True the work
            stops with ``concurrent.futures.CancelledError`` (the server's timeouts).

    Returns:
        ``{"video", "duration", "window_s", "stride_s", "segments": [{label, start, end, score}],
        "windows": [{start, end, label, score}]}``.

    Raises:
        ConfigError: a window or stride shorter than a frame, or too many windows.
    """
    info = probe(path)
    window_s, stride_s = timeline_steps(info, predictor.spec, window_s, stride_s)
    windows = plan_windows(info, predictor.spec, window_s, stride_s, max_windows=max_windows)

    def scored(views: list[torch.Tensor]) -> torch.Tensor:
        if should_stop():
            raise CancelledError
        return predictor.logits(torch.stack(views))

    logits, owners = [], []  # each view's logits and its window
    batch: list[torch.Tensor] = []
    for window, frames in enumerate(window_clips(path, info, windows, predictor.reader.decode_size, should_stop)):
        views = predictor.reader.to_views(frames[None])  # (T, H, W, 3) -> (crops, T, C, H, W)
        batch.extend(views)
        owners += [window] * len(views)
        if len(batch) >= batch_size:
            logits.append(scored(batch))
            batch = []
    if batch:
        logits.append(scored(batch))
    _, scores = video_scores(torch.cat(logits), owners)  # a window's crops are averaged as a video's views are
    top_scores, top_ids = torch.from_numpy(scores).max(-1)
    labels = [predictor.id2label[int(i)] for i in top_ids]
    scores = top_scores.tolist()
    return {
        "video": str(path),
        "duration": round(info.duration, 3),
        "window_s": round(window_s, 3),
        "stride_s": round(stride_s, 3),
        "segments": merge_segments(windows, labels, scores),
        "windows": [
            {"start": round(w.start, 3), "end": round(w.end, 3), "label": label, "score": score}
            for w, label, score in zip(windows, labels, scores, strict=True)
        ],
    }


def write_timeline(timeline: dict, output_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.timeline.json`` and ``<stem>.timeline.png`` into ``output_dir``; return both paths."""
    from vidcls.engine.predict_output import atomic_open

    stem = Path(timeline["video"]).stem
    json_path, png_path = (Path(output_dir) / f"{stem}.timeline.{ext}" for ext in ("json", "png"))
    with atomic_open(json_path) as file:
        file.write(json.dumps(timeline, indent=2) + "\n")
    plot_timeline(timeline, png_path)
    return json_path, png_path


def plot_timeline(timeline: dict, path: str | Path) -> Path:
    """Segments as coloured bars along time, above the top score of each window."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    names = sorted({s["label"] for s in timeline["segments"]})
    colours = {name: plt.get_cmap("tab20")(i % 20) for i, name in enumerate(names)}
    fig, (bars, curve) = plt.subplots(2, 1, figsize=(12, 3.5), sharex=True, height_ratios=(1, 2))
    for s in timeline["segments"]:
        bars.broken_barh([(s["start"], s["end"] - s["start"])], (0, 1), color=colours[s["label"]])
    bars.set_yticks([])
    bars.set_title(Path(timeline["video"]).name)
    bars.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[n]) for n in names], labels=names,
                loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")  # fmt: skip
    centres = [(w["start"] + w["end"]) / 2 for w in timeline["windows"]]
    curve.plot(centres, [w["score"] for w in timeline["windows"]], color="black", linewidth=1)
    curve.set_ylim(0, 1.02)
    curve.set_ylabel("top score")
    curve.set_xlabel("time (s)")
    curve.set_xlim(0, timeline["duration"])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
