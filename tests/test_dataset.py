import numpy as np
import torch

from conftest import frame_numbers, write_numbered_video
from vidcls.config import ClipSpec
from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import VideoRecord

# Frames kept at full size and never flipped, so their numbers can be read back.
SPEC = ClipSpec(num_frames=4, sample_rate=2, image_size=48, eval_clips=3, hflip=False, scale_range=(1.0, 1.0))


def _numbers(item) -> list[int]:
    # (T, C, H, W) -> (T, H, W, C)
    return frame_numbers(item["video"].permute(0, 2, 3, 1).numpy())


def test_eval_items_cover_each_video_with_its_clips(tmp_path):
    videos = [write_numbered_video(tmp_path / f"v{i}.avi", num_frames=40 + 10 * i) for i in range(2)]
    dataset = ClipDataset([VideoRecord(v, i, str(v)) for i, v in enumerate(videos)], SPEC, train=False)
    assert len(dataset) == 2 * 3
    items = [dataset[i] for i in range(len(dataset))]
    assert [item["video_index"] for item in items] == [0, 0, 0, 1, 1, 1]
    assert [item["label"] for item in items] == [0, 0, 0, 1, 1, 1]
    assert _numbers(items[0]) == [0, 2, 4, 6] and _numbers(items[5]) == [42, 44, 46, 48]
    assert items[0]["video"].dtype == torch.uint8 and items[0]["video"].shape == (4, 3, 48, 48)


def test_train_clips_are_random_and_keep_the_rate(tmp_path):
    video = write_numbered_video(tmp_path / "v.avi", num_frames=60)
    dataset = ClipDataset([VideoRecord(video, 0, "g")], SPEC, train=True)
    assert len(dataset) == 1
    starts = set()
    for _ in range(12):
        numbers = _numbers(dataset[0])
        assert np.all(np.diff(numbers) == 2)
        starts.add(numbers[0])
    assert len(starts) > 3


def test_segments_from_manifests_are_respected(tmp_path):
    video = write_numbered_video(tmp_path / "v.avi", num_frames=100)  # 4 s at 25 fps
    record = VideoRecord(video, 0, "g", start=1.0, end=2.0)  # frames 25..49
    for train in (True, False):
        dataset = ClipDataset([record], SPEC, train=train)
        for i in range(len(dataset)):
            assert all(25 <= n < 50 for n in _numbers(dataset[i]))
