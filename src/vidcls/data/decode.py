"""Video decoding with PyAV: the only module that imports ``av``.

Frames are picked by presentation time (frame index / fps from the stream's first frame), so variable frame
rates, frames stored out of order and containers that report no frame count all work. Only the span a clip
needs is decoded: seek to the keyframe before it, stop right after it, and convert to RGB only the frames
that are kept (colour conversion costs ten times the decoding itself). Frames come out upright.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vidcls.errors import DecodeError

logger = logging.getLogger(__name__)

# av.FFmpegError covers corrupt data and premature EOF; OSError a missing or unreadable file.
_AV_ERRORS = (av.FFmpegError, OSError, ValueError)

# Seconds of video that may be missing at the end before a file counts as truncated (headers often
# overstate the length by a few frames).
TRUNCATION_SLACK_S = 0.5

# What frames are scaled to while they are converted to RGB: an int caps the short side (aspect kept; frames
# are only ever shrunk, as enlarging is cheaper on the part a crop keeps), a (height, width) pair is an exact
# upright size, None keeps the stored size.
FrameSize = int | tuple[int, int] | None


# Scalers of this thread, by output size: each caches FFmpeg's scaling context, which costs more to build
# than to use. Never shared between threads: two threads scaling through one context crash the process.
_scalers = threading.local()
MAX_SCALERS = 128  # per thread; training draws a short side per clip from about 65 sizes


def _reformatter(width: int, height: int) -> VideoReformatter:
    cache = _scalers.__dict__.setdefault("by_size", {})
    if (width, height) not in cache:
        if len(cache) >= MAX_SCALERS:
            cache.clear()
        cache[width, height] = VideoReformatter()
    return cache[width, height]


@dataclass(frozen=True)
class VideoInfo:
    """What the sampler needs to know about a video. Width and height are as displayed (after rotation)."""

    num_frames: int
    fps: float
    start_time: float  # presentation time of the first frame, in seconds
    width: int
    height: int
    rotation: int  # degrees counter-clockwise to turn the stored frames upright
    stream_index: int  # the container's best video stream (the one FFmpeg and torchcodec pick)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


# Demuxers that read one picture file (FFmpeg picks them by content, whatever the name says: a PNG renamed .mp4
# is read by png_pipe), and codecs that store pictures. A single frame in either is a still, not a video.
_IMAGE_DEMUXERS = ("image2", "image2pipe")
_IMAGE_CODECS = {"png", "apng", "mjpeg", "jpeg2000", "jpegls", "jpegxl", "bmp", "gif", "webp", "tiff", "qoi"}
_IMAGE_CODECS |= {"ppm", "pgm", "pgmyuv", "pam", "pbm", "pcx", "sgi", "targa", "dpx", "exr", "hdr", "xbm", "xwd"}
# Cover art of an audio file shows up as a one-frame video stream with this disposition.
_PICTURE_DISPOSITIONS = sum(
    getattr(getattr(av.stream, "Disposition", None), name, 0) for name in ("attached_pic", "timed_thumbnails")
)
_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file before opening it: opening a FIFO waits for a writer, forever.

    Raises:
        DecodeError: the path is missing, or is a folder, a FIFO, a socket or a device.
    """
    try:
        mode = os.stat(path).st_mode  # follows links: a link to a video is fine
    except OSError as err:
        raise DecodeError(f"{path}: cannot open as a video ({_reason(err)})") from err
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "a device or other special file")
        raise DecodeError(f"{path}: is {kind}, not a regular file; pass a video file")


def _video_streams(container) -> list:
    return [s for s in container.streams.video if not int(s.disposition or 0) & _PICTURE_DISPOSITIONS]


def _open(path: Path):
    check_regular_file(path)
    try:
        # Tags are never used here; a title in Latin-1 must not make a video (or an audio file) unreadable.
        container = av.open(str(path), metadata_errors="replace")
    except _AV_ERRORS as err:
        raise DecodeError(f"{path}: cannot open as a video ({_reason(err)})") from err
    if not _video_streams(container):
        pictures = bool(container.streams.video)
        container.close()
        what = "audio only, with cover art" if pictures else "audio only, or not a video"
        raise DecodeError(f"{path}: no video stream ({what})")
    return container


def _is_picture_format(container, stream) -> bool:
    """Read by an image demuxer (png_pipe, jpeg_pipe, image2, ...), or coded with a picture codec."""
    demuxer = container.format.name
    return demuxer.endswith("_pipe") or demuxer in _IMAGE_DEMUXERS or stream.codec_context.name in _IMAGE_CODECS


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _frame_time(frame, fallback: float) -> float:
    return float(frame.time) if frame.time is not None else fallback


def probe(path: str | Path) -> VideoInfo:
    """Open a video, decode its first frame and return its frame count, fps and upright size.

    Raises:
        DecodeError: the path is not a regular file (a FIFO, a folder), cannot be opened, has no video stream
            (audio only), holds a single picture (a PNG or JPEG, whatever its name) or no decodable frame.
    """
    path = Path(path)
    with _open(path) as container:
        streams = _video_streams(container)
        best = container.streams.best("video")  # FFmpeg's pick, unless that is cover art
        stream = next((s for s in streams if best is not None and s.index == best.index), streams[0])
        fps = _fps(stream)
        try:
            first = next(container.decode(stream))
        except StopIteration:
            raise DecodeError(f"{path}: the video stream has no frames") from None
        except _AV_ERRORS as err:
            raise DecodeError(f"{path}: cannot decode the first frame ({_reason(err)})") from err
        num_frames = stream.frames or _estimate_frames(container, stream, fps)
        if num_frames <= 1 and _is_picture_format(container, stream):
            kind = f"{stream.codec_context.name} read by {container.format.name}"
            raise DecodeError(f"{path}: is a still image ({kind}), not a video")
        rotation = int(round((first.rotation or 0) / 90)) * 90 % 360
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        return VideoInfo(num_frames, fps, _frame_time(first, 0.0), width, height, rotation, stream.index)


def _estimate_frames(container, stream, fps: float) -> int:
    """Frame count for containers that declare none (MKV, WebM): from the duration, else by counting packets."""
    if stream.duration and stream.time_base:
        return max(1, math.floor(float(stream.duration * stream.time_base) * fps))
    if container.duration:
        return max(1, math.floor(container.duration / av.time_base * fps))
    container.seek(0, stream=stream)
    return max(1, sum(1 for packet in container.demux(stream) if packet.size))


def output_size(info: VideoInfo, size: FrameSize = None) -> tuple[int, int]:
    """(width, height) of the upright frames decoded at ``size``."""
    width, height = info.width, info.height
    short = min(width, height)
    if isinstance(size, tuple | list):
        height, width = size
    elif size is not None and short > size:
        width, height = max(1, round(width * size / short)), max(1, round(height * size / short))
    return width, height


def _stored_size(info: VideoInfo, size: FrameSize = None) -> tuple[int, int]:
    """(width, height) to scale the stored frames to: the rotation turns them upright afterwards."""
    width, height = output_size(info, size)
    return (height, width) if info.rotation in (90, 270) else (width, height)


def _to_rgb(frame, width: int, height: int) -> np.ndarray:
    """Scale and convert to RGB in one FFmpeg call, honouring the frame's colour space and range."""
    rgb = _reformatter(width, height).reformat(
        frame,
        width=width,
        height=height,
        format="rgb24",
        interpolation="AREA",
        src_color_range=frame.color_range or None,
        threads=1,  # a threaded scaler inherited through fork() hangs in the child (DataLoader workers)
    )
    return rgb.to_ndarray()


def read_frames(
    path: str | Path,
    indices,
    info: VideoInfo | None = None,
    size: FrameSize = None,
) -> np.ndarray:
    """Decode the frames at ``indices`` (frame numbers at the video's fps) as upright RGB.

    Args:
        path: the video file.
        indices: frame numbers, in any order, repeats allowed. Numbers past the end give the last frame.
        info: the result of ``probe(path)``, to skip probing again.
        size: an int shrinks frames whose shorter side is larger, keeping the aspect ratio; (height, width)
            scales them to exactly that. Done by FFmpeg's scaler together with the colour conversion, which
            costs less than resizing afterwards.

    Returns:
        uint8 array (T, H, W, 3).
    """
    path = Path(path)
    info = info or probe(path)
    indices = np.asarray(indices, dtype=np.int64)
    wanted = np.unique(indices)
    times = info.start_time + wanted / info.fps
    half_frame = 0.5 / info.fps
    best = [None] * len(wanted)
    best_gap = np.full(len(wanted), np.inf)

    with _open(path) as container:
        stream = container.streams[info.stream_index]
        if times[0] > info.start_time + half_frame:
            # Seek lands on the keyframe at or before the clip's first frame.
            container.seek(int((times[0] - half_frame) / stream.time_base), stream=stream, backward=True)
        decoded = 0
        try:
            for frame in container.decode(stream):
                t = _frame_time(frame, info.start_time + decoded / info.fps)
                decoded += 1
                gap = np.abs(times - t)
                closer = gap < best_gap
                best_gap[closer] = gap[closer]
                for j in np.flatnonzero(closer):
                    best[j] = frame
                if t > times[-1] + half_frame:
                    break
        except _AV_ERRORS as err:
            raise DecodeError(f"{path}: decoding failed after {decoded} frames ({_reason(err)})") from err
    if best[0] is None:
        raise DecodeError(f"{path}: no frame decoded near {times[0]:.2f}s")
    # Past the last frame, the last frame stands in (frame counts are often estimates), but a stream that
    # stops far short of its declared length was cut off: that is an error, not a frozen picture.
    declared = wanted < info.num_frames
    if (best_gap[declared] > max(TRUNCATION_SLACK_S, 4 / info.fps)).any():
        missing = times[declared][best_gap[declared].argmax()]
        raise DecodeError(f"{path}: no frame near {missing:.2f}s of a declared {info.duration:.2f}s (file truncated?)")

    # Every frame gets the same size, even if the stream changes resolution midway.
    width, height = _stored_size(info, size)
    converted: dict[int, np.ndarray] = {}
    arrays = []
    for frame in best:
        if id(frame) not in converted:
            rgb = _to_rgb(frame, width, height)
            converted[id(frame)] = np.rot90(rgb, k=info.rotation // 90) if info.rotation else rgb
        arrays.append(converted[id(frame)])
    # (T_unique, H, W, 3), then back to the requested order with repeats.
    clip = np.stack(arrays)
    return np.ascontiguousarray(clip[np.searchsorted(wanted, indices)])


# Some containers hand frames out a little out of presentation order (AVI with B-frames carries decoding
# times): streaming holds back this many and releases them in time order.
_REORDER_DEPTH = 8


def _in_time_order(frames, info: VideoInfo) -> Iterator[tuple[float, object]]:
    """(seconds since the first frame, frame) in presentation order, for frames at most a few out of order."""
    held: list = []
    for count, frame in enumerate(frames):
        t = _frame_time(frame, info.start_time + count / info.fps) - info.start_time
        heapq.heappush(held, (t, count, frame))  # count breaks ties: frames themselves do not compare
        if len(held) > _REORDER_DEPTH:
            t, _, frame = heapq.heappop(held)
            yield t, frame
    while held:
        t, _, frame = heapq.heappop(held)
        yield t, frame


def stream_frames(
    path: str | Path,
    indices=None,
    info: VideoInfo | None = None,
    size: FrameSize = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield the frames at ``indices`` in one sequential decoding pass, holding a few frames at a time.

    For long videos: unlike ``read_frames``, nothing is kept, so memory stays flat however long the video,
    and only the wanted frames are converted to RGB. Each wanted frame number gets the first frame shown at
    or after its time (less half a frame); numbers past the end get the last frame.

    Args:
        path: the video file.
        indices: frame numbers at the video's fps (sorted and deduplicated here); None for every frame.
        info: the result of ``probe(path)``, to skip probing again.
        size: as in ``read_frames``.

    Yields:
        (seconds since the first frame, uint8 upright RGB (H, W, 3)), one per wanted frame number, in order.
    """
    path = Path(path)
    info = info or probe(path)
    wanted = None if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
    width, height = _stored_size(info, size)

    def upright(frame) -> np.ndarray:
        rgb = _to_rgb(frame, width, height)
        return np.ascontiguousarray(np.rot90(rgb, k=info.rotation // 90)) if info.rotation else rgb

    position, last, t = 0, None, 0.0  # position: the next wanted frame number
    with _open(path) as container:
        decoded = 0
        try:
            for t, frame in _in_time_order(container.decode(container.streams[info.stream_index]), info):
                decoded += 1
                if wanted is None:
                    yield t, upright(frame)
                    continue
                rgb = None
                while position < len(wanted) and wanted[position] / info.fps <= t + 0.5 / info.fps:
                    rgb = upright(frame) if rgb is None else rgb  # a frame shown twice is converted once
                    yield t, rgb
                    position += 1
                if position == len(wanted):
                    return
                last = frame
        except _AV_ERRORS as err:
            raise DecodeError(f"{path}: decoding failed after {decoded} frames ({_reason(err)})") from err
    if wanted is None or position == len(wanted):
        return
    if last is None:
        raise DecodeError(f"{path}: no frame decoded")
    # As in read_frames: cut off far short of its length is an error. The last declared frame wanted is the
    # furthest from where decoding stopped (the first one missing may be only a frame past it).
    declared = wanted[position:][wanted[position:] < info.num_frames]
    missing = declared[-1] / info.fps if len(declared) else 0.0
    if len(declared) and missing - t > max(TRUNCATION_SLACK_S, 4 / info.fps):
        raise DecodeError(f"{path}: no frame near {missing:.2f}s of a declared {info.duration:.2f}s (file truncated?)")
    rgb = upright(last)
    for _ in range(position, len(wanted)):
        yield t, rgb
