import numpy as np
import pytest
import torch

from vidcls.config import Augmentation, ClipSpec, EvalViews
from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import VideoRecord

SPEC = ClipSpec(num_frames=4, sample_rate=2, image_size=48)
# Frames kept at full size and never flipped, so their numbers can be read back; 3 clips per video in evaluation.
SETTINGS = {"augmentation": Augmentation(hflip=False, scale_range=(1.0, 1.0)), "views": EvalViews(clips=3)}


@pytest.fixture(scope="session")
def numbers_of(frame_numbers):
    """``numbers_of(item)``: the frame numbers a dataset item's clip shows."""
    # (T, C, H, W) -> (T, H, W, C)
    return lambda item: frame_numbers(item["video"].permute(0, 2, 3, 1).numpy())


def test_eval_items_cover_each_video_with_its_clips(write_numbered_video, numbers_of, tmp_path):
    videos = [write_numbered_video(tmp_path / f"v{i}.avi", num_frames=40 + 10 * i) for i in range(2)]
    dataset = ClipDataset([VideoRecord(v, i, str(v)) for i, v in enumerate(videos)], SPEC, train=False, **SETTINGS)
    assert len(dataset) == 2 * 3
    items = [dataset[i] for i in range(len(dataset))]
    assert [item["video_index"] for item in items] == [0, 0, 0, 1, 1, 1]
    assert [item["label"] for item in items] == [0, 0, 0, 1, 1, 1]
    assert numbers_of(items[0]) == [0, 2, 4, 6] and numbers_of(items[5]) == [42, 44, 46, 48]
    assert items[0]["video"].dtype == torch.uint8 and items[0]["video"].shape == (4, 3, 48, 48)


def test_a_video_shorter_than_a_clip_is_one_clip_decoded_and_counted_once(
    write_numbered_video, numbers_of, save_micro_model, tmp_path
):
    from vidcls.engine.predict import Predictor

    short = write_numbered_video(tmp_path / "short.avi", num_frames=6)  # span 8: shorter than one clip
    long = write_numbered_video(tmp_path / "long.avi", num_frames=40)
    dataset = ClipDataset([VideoRecord(short, 0, "s"), VideoRecord(long, 1, "l")], SPEC, train=False, **SETTINGS)
    assert [item["video_index"] for item in (dataset[i] for i in range(len(dataset)))] == [0, 1, 1, 1]
    assert numbers_of(dataset[0]) == [0, 2, 3, 5]  # the whole video, once
    predictor = Predictor.from_pretrained(save_micro_model(tmp_path / "model"), "cpu")
    assert len(predictor.clips_from_file(short)) == 1 and len(predictor.clips_from_file(long)) == 4


def test_train_clips_are_random_and_keep_the_rate(write_numbered_video, numbers_of, tmp_path):
    video = write_numbered_video(tmp_path / "v.avi", num_frames=60)
    dataset = ClipDataset([VideoRecord(video, 0, "g")], SPEC, train=True, **SETTINGS)
    assert len(dataset) == 1
    starts = set()
    for _ in range(12):
        numbers = numbers_of(dataset[0])
        assert np.all(np.diff(numbers) == 2)
        starts.add(numbers[0])
    assert len(starts) > 3


def test_segments_from_manifests_are_respected(write_numbered_video, numbers_of, tmp_path):
    video = write_numbered_video(tmp_path / "v.avi", num_frames=100)  # 4 s at 25 fps
    record = VideoRecord(video, 0, "g", start=1.0, end=2.0)  # frames 25..49
    for train in (True, False):
        dataset = ClipDataset([record], SPEC, train=train, **SETTINGS)
        for i in range(len(dataset)):
            assert all(25 <= n < 50 for n in numbers_of(dataset[i]))


def test_frames_are_decoded_at_the_size_the_transforms_need(write_numbered_video, tmp_path, monkeypatch):
    """Training decodes each clip at (at most) its drawn short side, so the crop after it resamples nothing;
    evaluation at the model's size; the cache holds the largest training side."""
    from vidcls.data.cache import FrameCache
    from vidcls.data.decode import probe

    video = write_numbered_video(tmp_path / "v.avi", num_frames=60, size=(64, 48))
    spec = ClipSpec(num_frames=4, sample_rate=2, image_size=32)
    scale = Augmentation(scale_range=(1.0, 1.5))  # short sides 32..48
    train = ClipDataset([VideoRecord(video, 0, "g")], spec, train=True, augmentation=scale)
    sizes = []
    decode = train.read_frames
    monkeypatch.setattr(train, "read_frames", lambda *a, size: sizes.append(size) or decode(*a, size=size))
    for _ in range(30):
        assert train[0]["video"].shape == (4, 3, 32, 32)
    assert min(sizes) >= 32 and max(sizes) <= 48 and len(set(sizes)) > 5

    evaluation = ClipDataset([VideoRecord(video, 0, "g")], spec, train=False)
    assert evaluation.decode_size == (32, 32)
    cache = FrameCache(tmp_path / "cache", max_ratio=None)
    cached = ClipDataset([VideoRecord(video, 0, "g")], spec, train=True, augmentation=scale, cache=cache)
    assert cached[0]["video"].shape == (4, 3, 32, 32)
    assert cache.read_segment(video, probe(video), [0], 48).shape == (1, 48, 64, 3)  # cached at the largest side
    assert len(list((tmp_path / "cache").iterdir())) == 1  # found, not added
