import logging
from fractions import Fraction

import av
import numpy as np
import pytest

from vidcls.data import backends
from vidcls.data.backends import get_reader, read_frames_torchcodec
from vidcls.data.decode import probe, read_frames
from vidcls.errors import ConfigError


@pytest.mark.usefixtures("torchcodec_loads")
def test_torchcodec_picks_the_same_frames(write_numbered_video, frame_numbers, tmp_path):
    path = write_numbered_video(tmp_path / "numbered.avi", num_frames=60)
    for indices in ([0, 1, 2, 3], [40, 44, 48, 52], [59, 10, 10, 30], [50, 58, 70]):
        assert frame_numbers(read_frames_torchcodec(path, indices)) == frame_numbers(read_frames(path, indices))


@pytest.mark.usefixtures("torchcodec_loads")
def test_torchcodec_matches_pyav_on_real_videos(real_video):
    info = probe(real_video)
    indices = np.arange(8) * 2 + max(0, info.num_frames - 20)
    ours, theirs = read_frames(real_video, indices, info), read_frames_torchcodec(real_video, indices, info)
    assert ours.shape == theirs.shape  # rotation applied by both
    # Identical at full size but for 10-bit dithering.
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 3


def test_unloadable_torchcodec_falls_back_to_pyav_once(monkeypatch, caplog):
    monkeypatch.setattr(backends, "torchcodec_problem", lambda: "RuntimeError: libavutil.so not found")
    with caplog.at_level(logging.WARNING):
        assert get_reader("torchcodec") is read_frames
    assert "decoding with PyAV" in caplog.text


def test_unknown_backend():
    with pytest.raises(ConfigError, match="--decoder 'decord'"):
        get_reader("decord")


def test_variable_frame_rate_is_sampled_by_presentation_time(frame_numbers, tmp_path):
    """Frames at irregular times: each request gets the frame shown nearest its time (index / average fps)."""
    path = tmp_path / "vfr.mkv"
    times_ms = [0, 40, 80, 120, 300, 340, 380, 420, 800, 840, 880, 920, 960, 1000]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.bit_rate = 2_000_000
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)  # millisecond timestamps
        for i, t in enumerate(times_ms):
            pixels = np.zeros((48, 64, 3), np.uint8)
            pixels[..., 0] = 8 * i  # as the write_numbered_video fixture does
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = t, stream.time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    info = probe(path)
    indices = np.arange(0, 26, 2)
    got = frame_numbers(read_frames(path, indices, info))
    expected = [int(np.argmin(np.abs(np.array(times_ms) / 1000 - (info.start_time + i / info.fps)))) for i in indices]
    assert got == expected


@pytest.mark.usefixtures("torchcodec_loads")
@pytest.mark.parametrize("size", [120, (224, 224)], ids=["short-side", "square"])
def test_torchcodec_scales_to_the_same_size(real_dir, size):
    path = real_dir / "v_ApplyEyeMakeup_g01_c01.avi"
    info = probe(path)
    ours, theirs = read_frames(path, [5, 9], info, size=size), read_frames_torchcodec(path, [5, 9], info, size=size)
    assert ours.shape == theirs.shape
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 4  # two scalers, same picture
