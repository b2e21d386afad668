import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from vidcls.config import ClipSpec, EvalViews
from vidcls.data import cache as cache_module
from vidcls.data.cache import SUFFIX, FrameCache, fill_cache
from vidcls.data.dataset import ClipDataset
from vidcls.data.decode import probe, read_frames
from vidcls.data.discovery import VideoRecord
from vidcls.errors import ConfigError


@pytest.fixture
def video(write_numbered_video, tmp_path):
    return write_numbered_video(tmp_path / "v_A_g01_c01.avi", num_frames=50, size=(80, 60))


def entries(root):
    return sorted(root.glob(f"*{SUFFIX}"))


def close(jpeg_frames, frames) -> bool:
    """JPEG (quality 90) of these flat test frames is within a few grey levels; neighbouring frames are 8 apart."""
    return np.abs(np.asarray(jpeg_frames, dtype=float) - np.asarray(frames, dtype=float)).mean() < 3


def no_decoding(*args, **kwargs):
    raise AssertionError("a warm read decoded the video")


def test_a_cold_read_fills_and_a_warm_read_decodes_nothing(video, tmp_path, monkeypatch):
    info, indices = probe(video), [3, 7, 11, 49, 7]
    cold = FrameCache(tmp_path / "cache", max_ratio=None).read_segment(video, info, indices, 30)
    assert cold.shape == (5, 30, 40, 3)
    for frame, index in zip(cold, indices, strict=True):
        assert close(frame, read_frames(video, [index], info, 30)[0])  # JPEG: close to the decoded frame
    assert len(entries(tmp_path / "cache")) == 1
    monkeypatch.setattr(cache_module, "stream_frames", no_decoding)
    warm = FrameCache(tmp_path / "cache", max_ratio=None).read_segment(video, info, indices, 30)
    assert np.array_equal(warm, cold)  # what a cold read returns is what later reads return


def test_evaluation_clips_are_identical_with_and_without_cache(video, tmp_path, monkeypatch):
    spec, views = ClipSpec(num_frames=4, sample_rate=3, image_size=16), EvalViews(clips=3)
    records = [VideoRecord(video, 0, "g01")]
    plain = ClipDataset(records, spec, train=False, views=views)
    cold = ClipDataset(records, spec, train=False, views=views, cache=FrameCache(tmp_path / "cache"))
    expected = [plain[i]["video"] for i in range(len(plain))]
    assert all(torch.equal(cold[i]["video"], clip) for i, clip in enumerate(expected))
    assert len(entries(tmp_path / "cache")) == len(plain) == 3  # one entry per clip, written by the read itself
    warm = ClipDataset(records, spec, train=False, views=views, cache=FrameCache(tmp_path / "cache"))
    monkeypatch.setattr(warm, "read_frames", no_decoding)
    assert all(torch.equal(warm[i]["video"], clip) for i, clip in enumerate(expected))


def test_training_clips_are_the_same_cold_and_warm_under_a_seed(video, tmp_path):
    spec, records = ClipSpec(num_frames=4, sample_rate=2, image_size=32), [VideoRecord(video, 0, "g01")]

    def clips(cache):
        dataset = ClipDataset(records, spec, train=True, cache=cache)
        torch.manual_seed(0)
        return [dataset[0]["video"] for _ in range(6)]

    plain = clips(None)
    cold = clips(FrameCache(tmp_path / "cache", max_ratio=None))
    warm = clips(FrameCache(tmp_path / "cache", max_ratio=None))
    assert all(torch.equal(a, b) for a, b in zip(cold, warm, strict=True))
    # The same frames, crops and flips as without the cache (up to JPEG's small error).
    assert all(close(a, b) for a, b in zip(plain, cold, strict=True))


def test_the_size_bound_is_honoured_and_reported_once(video, tmp_path, caplog):
    info = probe(video)
    tight = FrameCache(tmp_path / "cache", max_ratio=0.5)  # half the source video's bytes: nothing fits
    with caplog.at_level(logging.WARNING):
        assert tight.read_segment(video, info, [1, 2], 30) is None  # the caller decodes as usual
        assert tight.read_segment(video, info, [1, 2], 30) is None  # remembered: no second decoding pass
        clip = tight.read_clip(video, info, [1, 2], 30)
    assert np.array_equal(clip, read_frames(video, [1, 2], info, 30))  # decoded, not stored
    assert entries(tmp_path / "cache") == [] and tight.used_bytes() == 0
    assert sum("is full" in r.message for r in caplog.records) == 1
    assert "did not fit" in tight.summary()
    capped = FrameCache(tmp_path / "cache", max_bytes=1000, max_ratio=None)  # --cache_max_gb, an absolute cap
    assert capped.read_segment(video, info, [1], 30) is None and entries(tmp_path / "cache") == []


def test_the_default_bound_is_ten_times_the_sources_held(video, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    info = probe(video)
    cache.read_segment(video, info, [0], 30)
    cache.read_clip(video, info, np.arange(0, 48, 3), 30)
    assert 0 < cache.used_bytes() <= 10 * video.stat().st_size
    assert cache.used_bytes() == sum(f.stat().st_size for f in entries(tmp_path / "cache"))
    assert FrameCache(tmp_path / "cache").used_bytes() == cache.used_bytes()  # another process counts the same


def test_an_entry_is_rebuilt_when_the_source_changes(video, write_numbered_video, tmp_path):
    cache = FrameCache(tmp_path / "cache", max_ratio=None)
    old = read_frames(video, [40], probe(video), 30)
    assert close(cache.read_segment(video, probe(video), [40], 30), old)
    write_numbered_video(video, num_frames=20, size=(80, 60))  # same path, new content
    os.utime(video, ns=(1, 1))
    info = probe(video)
    new = read_frames(video, [19], info, 30)  # past the new end: the last frame
    assert close(cache.read_segment(video, info, [40], 30), new) and not close(new, old)
    assert len(entries(tmp_path / "cache")) == 1  # replaced, not added


def test_a_killed_writer_leaves_no_half_entry(video, tmp_path):
    # The writer dies (no clean-up runs) after writing its file, before renaming it into place.
    script = (
        "import os, sys; from vidcls.data import cache; from vidcls.data.decode import probe\n"
        "os.replace = lambda *a: os._exit(9)\n"
        "c = cache.FrameCache(sys.argv[1], max_ratio=None); c.read_segment(sys.argv[2], probe(sys.argv[2]), [5], 30)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cache"), str(video)], env=env)
    assert killed.returncode == 9
    assert entries(tmp_path / "cache") == [] and list((tmp_path / "cache").iterdir())  # only the unnamed file
    cache = FrameCache(tmp_path / "cache", max_ratio=None)
    assert cache.used_bytes() == 0
    assert close(cache.read_segment(video, probe(video), [5], 30), read_frames(video, [5], probe(video), 30))
    assert len(entries(tmp_path / "cache")) == 1


def test_fill_cache_reports_each_outcome(video, tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"nope")
    cache = FrameCache(tmp_path / "cache", max_ratio=None)
    outcomes = fill_cache(cache, [(video, 30), (bad, 30)], num_workers=0)
    assert outcomes["added"] == [str(video)] and "broken.avi" in outcomes["error"][0]
    assert fill_cache(cache, [(video, 30)], num_workers=0) == {"present": [str(video)]}
    assert cache.used_bytes() == entries(tmp_path / "cache")[0].stat().st_size


def test_workers_get_the_cache_without_this_process_mappings(video, tmp_path):
    cache = FrameCache(tmp_path / "cache", max_ratio=None)
    frames = cache.read_segment(video, probe(video), np.arange(50), 30)
    assert len(cache._open) == 1  # kept mapped: no re-reading the header per clip
    copy = pickle.loads(pickle.dumps(cache))
    assert len(pickle.dumps(cache)) < 10_000  # not the frames
    assert np.array_equal(copy.read_segment(video, probe(video), np.arange(50), 30), frames)


def test_raw_training_frames_are_the_decoded_frames(video, tmp_path):
    cache = FrameCache(tmp_path / "cache", max_ratio=None, codec="raw")
    info, indices = probe(video), [0, 9, 9, 30, 49]
    assert np.array_equal(cache.read_segment(video, info, indices, 30), read_frames(video, indices, info, 30))
    assert entries(tmp_path / "cache")[0].stat().st_size > 50 * 30 * 40 * 3  # every frame, as it is


def test_a_wrong_codec_or_ratio_names_the_flag():
    with pytest.raises(ConfigError, match="--cache_codec 'png'"):
        FrameCache("cache", codec="png")
    with pytest.raises(ConfigError, match="--cache_max_ratio must be above 0"):
        FrameCache("cache", max_ratio=0)


def test_a_video_that_breaks_is_left_to_the_usual_decoding(shared_videos, tmp_path, caplog):
    real = (shared_videos / "real" / "v_ApplyEyeMakeup_g01_c01.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(real[: len(real) * 3 // 10])  # opens, declares 164 frames, breaks about a third in
    info, cache = probe(cut), FrameCache(tmp_path / "cache", max_ratio=None)
    with caplog.at_level(logging.WARNING):
        assert cache.read_segment(cut, info, [0, 4, 8], 32) is None
    assert entries(tmp_path / "cache") == [] and "not caching" in caplog.text
    assert read_frames(cut, [0, 4, 8], info, 32).shape[0] == 3  # the clip itself still decodes, uncached
