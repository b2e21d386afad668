"""Shared fixtures: tiny generated videos and tiny model configs. Nothing here touches the network.

Test modules share helpers only through these fixtures, never by importing conftest or one another; a helper a
module needs is a fixture returning it (``write_numbered_video``, ``save_micro_model``, ``running_server``...).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import threading
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from transformers import TimesformerConfig, VideoMAEConfig, VideoPrismVisionConfig, VivitConfig, VJEPA2Config

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


# A test (or, as pytestmark, a module) that reads the shared videos without asking for the fixtures below says
# so with @pytest.mark.usefixtures("shared_videos").


@pytest.fixture(scope="session")
def real_videos(shared_videos) -> list[Path]:
    """Every real video (codecs, rotation, 10-bit, full range, no frame count...), sorted."""
    return REAL_VIDEOS


@pytest.fixture(scope="session")
def bad_videos(shared_videos) -> list[Path]:
    """Every broken or unsupported file of the shared videos, sorted."""
    return BAD_VIDEOS


@pytest.fixture(scope="session")
def real_dir(shared_videos) -> Path:
    """The folder of the real videos, to pick one by name."""
    return shared_videos / "real"


# A test asking for one of these runs once per file. Without the shared videos there is no file: pytest skips
# it ("got empty parameter set"), and shared_videos fails the tests that ask for it.
@pytest.fixture(params=REAL_VIDEOS, ids=lambda path: path.name)
def real_video(request, shared_videos) -> Path:
    return request.param


@pytest.fixture(params=BAD_VIDEOS, ids=lambda path: path.name)
def bad_video(request, shared_videos) -> Path:
    return request.param


@pytest.fixture(scope="session")
def torchcodec_loads() -> None:
    """torchcodec (the optional backend, and transformers.pipeline's decoder) needs FFmpeg's shared libraries,
    which `make test` installs: where they are still missing, the tests that need them fail, saying so."""
    from vidcls.data.backends import torchcodec_problem

    if torchcodec_problem():
        pytest.fail(f"torchcodec cannot load ({torchcodec_problem()}): run `make test`, which installs FFmpeg")


def _write_numbered_video(path: Path, num_frames: int, fps: int = 25, size=(64, 48), codec="mpeg4") -> Path:
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


def _frame_numbers(frames: np.ndarray) -> list[int]:
    """Inverse of _write_numbered_video: the frame number each decoded frame shows."""
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


MICRO_LABELS = {"left": 0, "right": 1, "up": 2}


@pytest.fixture(scope="session")
def save_micro_model(micro_config):
    """``save_micro_model(output_dir, sample_rate=2)``: an untrained micro VideoMAE with labels left, right and up,
    saved as vidcls train saves it (weights, video processor, vidcls.json); returns ``output_dir``."""
    from vidcls.models.factory import create_model, resolve_clip_spec, save_trained

    def save(output_dir: Path, sample_rate: int = 2) -> Path:
        torch.manual_seed(0)
        model = create_model(None, str(micro_config), MICRO_LABELS)
        return save_trained(model, resolve_clip_spec(model, sample_rate=sample_rate), output_dir)

    return save


SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
TINY_CONFIGS = {
    "videomae": VideoMAEConfig(
        image_size=16, patch_size=8, num_frames=4, tubelet_size=2, intermediate_size=64, **SMALL
    ),
    "timesformer": TimesformerConfig(image_size=16, patch_size=8, num_frames=4, intermediate_size=64, **SMALL),
    "vivit": VivitConfig(image_size=16, num_frames=4, tubelet_size=[2, 8, 8], intermediate_size=64, **SMALL),
    "vjepa2": VJEPA2Config(
        crop_size=16, frames_per_clip=4, patch_size=8, tubelet_size=2, mlp_ratio=2.0, num_pooler_layers=1,
        pred_hidden_size=32, pred_num_hidden_layers=1, pred_num_attention_heads=2, **SMALL,
    ),
    "videoprism": VideoPrismVisionConfig(
        image_size=16, num_frames=4, tubelet_size=[1, 8, 8], num_spatial_layers=1, num_temporal_layers=1,
        num_auxiliary_layers=1, intermediate_size=64, hidden_size=32, num_attention_heads=2,
    ),
}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_configs() -> dict:
    """A config of each supported family, 16 px and 4 frames, 2 layers of width 32: model type -> config."""
    return TINY_CONFIGS


@pytest.fixture(scope="module", params=sorted(TINY_CONFIGS))
def model_type(request) -> str:
    """A test asking for it runs once per family of ``tiny_configs``; ``parametrize("model_type", ...)`` narrows."""
    return request.param


def _write_still(path: Path, image_format: str = "PNG") -> Path:
    """A single picture (PNG, JPEG, GIF, ...) under whatever name ``path`` has, e.g. a PNG renamed .mp4."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path, format=image_format)
    return path


def _write_audio_only(path: Path, cover_art: bool = False) -> Path:
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


def _write_latin1_wav(path: Path) -> Path:
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


@pytest.fixture(scope="session")
def write_numbered_video():
    """``write_numbered_video(path, num_frames, fps=25, size=(64, 48))``: frame i shows i (see frame_numbers)."""
    return _write_numbered_video


@pytest.fixture(scope="session")
def frame_numbers():
    """``frame_numbers(frames)``: the number each frame of a numbered video shows."""
    return _frame_numbers


@pytest.fixture(scope="session")
def write_still():
    """``write_still(path, image_format="PNG")``: one picture under a video's name."""
    return _write_still


@pytest.fixture(scope="session")
def write_audio_only():
    """``write_audio_only(path, cover_art=False)``: an MP4 with sound and no video."""
    return _write_audio_only


@pytest.fixture(scope="session")
def write_latin1_wav():
    """``write_latin1_wav(path)``: a WAV file with a Latin-1 title tag."""
    return _write_latin1_wav


def _wait_until(condition, what: str, timeout: float = 30.0) -> None:
    """Poll for a state another thread reaches; fails naming what never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="session")
def wait_until():
    """``wait_until(condition, what, timeout=30.0)``: poll for what another thread does."""
    return _wait_until


@pytest.fixture(scope="session")
def running_server():
    """``with running_server(app) as url``: the app served by uvicorn on a free loopback port in a background
    thread, stopped on leaving."""
    import httpx
    import uvicorn

    @contextlib.contextmanager
    def serve(app):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # port 0: the system picks a free one, and it stays ours
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            _wait_until(healthy, "uvicorn to answer /health")
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            sock.close()

    return serve


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray of 2 CPUs for the whole session (`make test` installs the ray extra): starting one
    costs seconds, so every --engine ray test shares it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
