"""Shared fixtures: tiny generated videos and tiny model configs. Nothing here touches the network."""

from __future__ import annotations

import io
import os
import struct
import threading
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from transformers import VideoMAEConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
REAL_VIDEOS = sorted((SHARED_VIDEOS / "real").glob("*"))
BAD_VIDEOS = sorted((SHARED_VIDEOS / "bad").glob("*"))
# CI always has the shared videos: there a missing folder is an error, not skipped tests.
if os.environ.get("CI") and not (REAL_VIDEOS and BAD_VIDEOS):
    raise RuntimeError(f"CI needs the shared test videos at {SHARED_VIDEOS}")


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """The real and broken videos the tests read in place; without them those tests fail, saying where."""
    if not (REAL_VIDEOS and BAD_VIDEOS):
        pytest.fail(f"the tests on real and broken files need the shared test videos at {SHARED_VIDEOS}")
    return SHARED_VIDEOS


# Marks a test (or, as pytestmark, a module) that reads the shared videos.
needs_shared_videos = pytest.mark.usefixtures("shared_videos")


@pytest.fixture(scope="session")
def torchcodec_loads() -> None:
    """torchcodec (the optional backend, and transformers.pipeline's decoder) needs FFmpeg's shared libraries,
    which `make test` installs: where they are still missing, the tests that need them fail, saying so."""
    from vidcls.data.backends import torchcodec_problem

    if torchcodec_problem():
        pytest.fail(f"torchcodec cannot load ({torchcodec_problem()}): run `make test`, which installs FFmpeg")


def write_numbered_video(path: Path, num_frames: int, fps: int = 25, size=(64, 48), codec="mpeg4") -> Path:
    """A video whose frame i is flat red 8*(i % 32) and green 8*(i // 32), to check which frames were decoded.

    Steps of 8 survive lossy coding; up to 1024 frames are told apart.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.bit_rate = 2_000_000
        for i in range(num_frames):
            frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            frame[..., 0], frame[..., 1] = 8 * (i % 32), 8 * (i // 32)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def frame_numbers(frames: np.ndarray) -> list[int]:
    """Inverse of write_numbered_video: the frame number each decoded frame shows."""
    return [round(float(f[..., 0].mean()) / 8) + 32 * round(float(f[..., 1].mean()) / 8) for f in frames]


@pytest.fixture(scope="session")
def motion_data(tmp_path_factory) -> Path:
    """48 short generated videos in the guide's layout: 8 classes x 1 group x 2 clips per split."""
    from vidcls.data.synthetic import make_motion_dataset

    return make_motion_dataset(tmp_path_factory.mktemp("motion"), groups=(1, 1, 1), clips_per_group=2, seconds=1.0)


@pytest.fixture(scope="session")
def micro_config(tmp_path_factory) -> Path:
    """A VideoMAE config small enough to train in seconds: 16 px, 4 frames, 2 layers of width 32."""
    config = VideoMAEConfig(
        image_size=16,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    path = tmp_path_factory.mktemp("config") / "config.json"
    config.to_json_file(path)
    return path


def write_still(path: Path, image_format: str = "PNG") -> Path:
    """A single picture (PNG, JPEG, GIF, ...) under whatever name ``path`` has, e.g. a PNG renamed .mp4."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path, format=image_format)
    return path


def write_audio_only(path: Path, cover_art: bool = False) -> Path:
    """An MP4 with one AAC stream (one second of a tone) and, with ``cover_art``, a PNG cover picture."""
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=8000)
        audio.layout = "mono"
        if cover_art:  # a one-frame video stream marked as an attached picture, as music files carry
            cover = container.add_stream("png", rate=1)
            cover.width, cover.height, cover.pix_fmt = 32, 24, "rgb24"
            cover.disposition = av.stream.Disposition.attached_pic
            picture = av.VideoFrame.from_ndarray(np.zeros((24, 32, 3), dtype=np.uint8), format="rgb24")
            container.mux([*cover.encode(picture), *cover.encode()])
        tone = np.sin(np.arange(1024, dtype=np.float32) / 5)[None]  # (channels, samples)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


def write_latin1_wav(path: Path) -> Path:
    """A WAV file whose title tag is Latin-1, not UTF-8 (as old tools write them)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype("<i2").tobytes())
    data = bytearray(buffer.getvalue())
    title = "Café".encode("latin-1") + b"\0"
    info = b"INFOINAM" + struct.pack("<I", len(title)) + title
    data += b"LIST" + struct.pack("<I", len(info)) + info
    struct.pack_into("<I", data, 4, len(data) - 8)  # the RIFF size now covers the tag
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def fifo(tmp_path):
    """A named pipe called clip.mp4. Opening it to read waits for a writer: should the code under test do that, a
    writer comes by every 10 s and leaves at once, so the open returns and the test fails instead of hanging."""
    path = tmp_path / "clip.mp4"
    os.mkfifo(path)
    done = threading.Event()

    def unblock():
        while not done.wait(10):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # fails (ENXIO) while nobody reads
            except OSError:
                pass

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    yield path
    done.set()
    watchdog.join()
