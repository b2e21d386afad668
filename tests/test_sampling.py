import numpy as np
import pytest

from vidcls.data.sampling import random_clip, uniform_clips


@pytest.mark.parametrize(
    ("total", "num_frames", "rate", "clips", "expected"),
    [
        (20, 4, 2, 3, [[0, 2, 4, 6], [6, 8, 10, 12], [12, 14, 16, 18]]),
        (8, 4, 2, 1, [[0, 2, 4, 6]]),  # exactly one clip long
        (5, 4, 2, 2, [[0, 1, 3, 4]]),  # shorter than a clip: one clip spread over the whole video, not two alike
        (9, 4, 2, 4, [[0, 2, 4, 6], [1, 3, 5, 7]]),  # two distinct starts for four clips: each clip once
        (2, 4, 4, 1, [[0, 0, 1, 1]]),  # fewer frames than num_frames: frames repeat
        (1, 3, 4, 1, [[0, 0, 0]]),  # a single frame
        (100, 4, 1, 1, [[48, 49, 50, 51]]),  # one clip: the middle
    ],
)
def test_uniform_clips(total, num_frames, rate, clips, expected):
    got = uniform_clips(total, num_frames, rate, clips)
    assert [c.tolist() for c in got] == expected


def test_uniform_clips_cover_whole_video():
    clips = uniform_clips(1000, 16, 4, 5)
    assert clips[0][0] == 0
    assert clips[-1][-1] == 1000 - 4  # the last clip ends at the video's end
    assert all(c.max() < 1000 for c in clips)


@pytest.mark.parametrize("total", [1, 10, 63, 64, 65, 500])
def test_random_clip_stays_in_video(total):
    rng = np.random.default_rng(0)
    for _ in range(50):
        clip = random_clip(total, 16, 4, rng)
        assert len(clip) == 16
        assert clip.min() >= 0 and clip.max() < total
        assert np.all(np.diff(clip) >= 0)


def test_random_clip_varies_start_and_keeps_rate():
    rng = np.random.default_rng(0)
    starts = {int(random_clip(300, 16, 4, rng)[0]) for _ in range(30)}
    assert len(starts) > 10
    assert np.all(np.diff(random_clip(300, 16, 4, rng)) == 4)


def test_zero_frames_is_an_error():
    with pytest.raises(ValueError, match="at least one frame"):
        uniform_clips(0, 16, 4, 1)
