"""Decoder backends: PyAV (always there, the default) or torchcodec (optional, used only when it really loads).

Both take the same request (frame numbers at the video's fps, counted from its first frame, as given by
``decode.probe``) and return the same frames: uint8 (T, H, W, 3), upright, at
the same ``size``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from vidcls.data.decode import FrameSize, VideoInfo, output_size, probe, read_frames
from vidcls.errors import ConfigError, DecodeError

logger = logging.getLogger(__name__)

BACKENDS = ("pyav", "torchcodec")


@functools.cache
def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (it needs FFmpeg's shared libraries), or None when it can."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception as err:  # missing package, or its FFmpeg libraries fail to load (RuntimeError, OSError)
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else 'import failed'}"
    return None


def read_frames_torchcodec(
    path: str | Path, indices, info: VideoInfo | None = None, size: FrameSize = None
) -> np.ndarray:
    """``decode.read_frames`` through torchcodec: same arguments, same frames."""
    from torchcodec.decoders import VideoDecoder
    from torchvision.transforms import v2

    path = Path(path)
    info = info or probe(path)
    indices = np.asarray(indices, dtype=np.int64)
    transforms = []
    width, height = output_size(info, size)
    if (width, height) != (info.width, info.height):
        transforms.append(v2.Resize((height, width)))
    try:
        decoder = VideoDecoder(
            str(path), stream_index=info.stream_index, dimension_order="NHWC", transforms=transforms or None
        )
        last = decoder.metadata.end_stream_seconds or info.start_time + info.duration
        # A quarter frame past each frame's timestamp picks that frame, whatever the float rounding.
        seconds = np.minimum(info.start_time + (indices + 0.25) / info.fps, last - 0.25 / info.fps)
        return decoder.get_frames_played_at(seconds=seconds.tolist()).data.numpy()
    except (RuntimeError, ValueError, IndexError) as err:
        raise DecodeError(f"{path}: torchcodec failed ({str(err).strip().splitlines()[0]})") from err


def get_reader(backend: str = "pyav"):
    """The frame reader of ``backend``; torchcodec falls back to PyAV, saying so once, when it cannot load."""
    if backend not in BACKENDS:
        raise ConfigError(f"--decoder {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "torchcodec":
        problem = torchcodec_problem()
        if problem is None:
            return read_frames_torchcodec
        logger.warning("torchcodec cannot load (%s); decoding with PyAV", problem)
    return read_frames
