import os

import numpy as np
import pytest

from vidcls.config import ClipSpec, EvalViews
from vidcls.data.cache import FrameCache, fill_cache
from vidcls.data.dataset import ClipDataset
from vidcls.data.decode import probe, read_frames
from vidcls.data.discovery import VideoRecord


@pytest.fixture
def video(write_numbered_video, tmp_path):
    return write_numbered_video(tmp_path / "v_A_g01_c01.avi", num_frames=50, size=(80, 60))


def test_cached_frames_equal_decoded_frames(video, frame_numbers, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    info = probe(video)
    cached = cache.get(video, info, 30)
    assert cached.shape == (50, 30, 40, 3)
    indices = [3, 7, 11, 49]
    assert np.array_equal(cached[indices], read_frames(video, indices, info, 30))
    assert frame_numbers(cached[indices]) == indices


def test_dataset_clips_are_identical_with_and_without_cache(video, tmp_path):
    spec, views = ClipSpec(num_frames=4, sample_rate=3, image_size=16), EvalViews(clips=3)
    records = [VideoRecord(video, 0, "g01")]
    plain = ClipDataset(records, spec, train=False, views=views)
    cached = ClipDataset(records, spec, train=False, views=views, cache=FrameCache(tmp_path / "cache"))
    for i in range(len(plain)):
        assert (plain[i]["video"] == cached[i]["video"]).all()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_entry_is_rebuilt_when_the_source_changes(video, write_numbered_video, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    cache.get(video, probe(video), 30)
    assert cache.load(video, 30) is not None
    write_numbered_video(video, num_frames=20, size=(80, 60))  # same path, new content
    os.utime(video, ns=(1, 1))
    assert cache.load(video, 30) is None
    assert cache.get(video, probe(video), 30).shape[0] == 20


def test_budget_is_respected(video, tmp_path):
    cache = FrameCache(tmp_path / "cache", max_bytes=1000)  # smaller than one video
    assert cache.get(video, probe(video), 30) is None
    assert cache.over_budget == 1 and cache.used_bytes() == 0
    assert "did not fit" in cache.summary()


def test_fill_cache_reports_each_outcome(video, tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"nope")
    cache = FrameCache(tmp_path / "cache")
    outcomes = fill_cache(cache, [(video, 30), (bad, 30)], num_workers=0)
    assert outcomes["added"] == [str(video)] and "broken.avi" in outcomes["error"][0]
    assert fill_cache(cache, [(video, 30)], num_workers=0) == {"present": [str(video)]}
    assert cache.used_bytes() == 50 * 30 * 40 * 3 + 128  # frames plus the .npy header


def test_workers_get_the_cache_without_this_process_mappings(video, tmp_path):
    import pickle

    cache = FrameCache(tmp_path / "cache")
    frames = cache.get(video, probe(video), 30)
    assert cache.load(video, 30) is frames  # kept mapped: no re-reading per clip
    copy = pickle.loads(pickle.dumps(cache))
    assert len(pickle.dumps(cache)) < 10_000  # not the frames
    assert np.array_equal(copy.load(video, 30), frames)
