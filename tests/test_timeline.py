"""Timelines of long videos: window planning, streamed frames, merged segments, files, bounded memory."""

import json
import math
import tracemalloc
from concurrent.futures import CancelledError
from itertools import pairwise

import av
import numpy as np
import pytest

from vidcls.cli import main
from vidcls.cli.predict import rounded
from vidcls.config import ClipSpec
from vidcls.data.decode import VideoInfo, probe, read_frames, stream_frames
from vidcls.engine.predict import Predictor
from vidcls.engine.timeline import Window, check_windows, merge_segments, plan_windows, predict_timeline, window_clips
from vidcls.errors import ConfigError

SPEC = ClipSpec(num_frames=4, sample_rate=2, image_size=16)  # a clip spans 8 frames


def _info(num_frames: int, fps: float = 25.0) -> VideoInfo:
    return VideoInfo(num_frames, fps, 0.0, 64, 48, 0, 0)


@pytest.mark.parametrize(
    ("frames", "window", "stride", "starts", "first_clip"),
    [
        (250, 2.0, 1.0, [0, 1, 2, 3, 4, 5, 6, 7, 8], [21, 23, 25, 27]),  # a clip in the middle of 50 frames
        (250, 2.0, 3.0, [0, 3, 6, 8], [21, 23, 25, 27]),  # one more window, ending at the end, covers the tail
        (250, 0.32, 0.32, [round(0.32 * k, 2) for k in range(31)] + [9.68], [0, 2, 4, 6]),  # one clip span
        (5, 2.0, 1.0, [0], [0, 1, 3, 4]),  # shorter than a window: one window, frames spread over the video
    ],
)
def test_plan_windows(frames, window, stride, starts, first_clip):
    windows = plan_windows(_info(frames), SPEC, window, stride)
    assert [round(w.start, 2) for w in windows] == starts
    assert windows[0].indices.tolist() == first_clip
    assert windows[-1].end == pytest.approx(min(frames / 25, starts[-1] + window))


@pytest.mark.parametrize(
    ("frames", "fps", "window", "stride"),
    [
        (250, 25, 2.0, 1.0),
        (250, 25, 2.0, 3.0),
        (250, 25, 0.32, 0.32),
        (5, 25, 2.0, 1.0),
        (250, 25, 0.04, 0.04),
        (300, 30, 0.033, 0.033),
        (300, 29.97, 1.0, 0.7),
        (10, 25, 1e9, 1e9),
    ],
)
def test_check_windows_counts_what_plan_windows_makes(frames, fps, window, stride):
    info = _info(frames, fps)
    assert check_windows(info, window, stride) == len(plan_windows(info, SPEC, window, stride))


@pytest.mark.parametrize(
    ("window", "stride", "max_windows", "message"),
    [
        (2.0, 1e-9, 10_000, "stride 1e-09 s is shorter than one frame of this video (0.04 s at 25 fps)"),
        (1e-9, 1e-9, 10_000, "window 1e-09 s is shorter than one frame of this video (0.04 s at 25 fps)"),
        (0.039, 1.0, 10_000, "window 0.039 s is shorter than one frame"),
        (
            0.04,
            0.04,
            100,
            "window 0.04 s every 0.04 s makes 250 windows over this 10.0 s video, over the 100 limit "
            "(--max_windows): pass a longer stride",
        ),
        (math.inf, 1.0, 10_000, "window and stride must be positive seconds, got inf and 1"),
        (1.0, math.nan, 10_000, "window and stride must be positive seconds, got 1 and nan"),
        (-1.0, 1.0, 10_000, "window and stride must be positive seconds"),
    ],
)
def test_windows_shorter_than_a_frame_or_too_many_are_refused_before_planning(window, stride, max_windows, message):
    """The issue's stride=1e-9 once built 10^8 windows (GBs); now it fails at once, naming the limit."""
    for check in (lambda: check_windows(_info(250), window, stride, max_windows),
                  lambda: plan_windows(_info(250), SPEC, window, stride, max_windows=max_windows)):  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            check()
        assert str(caught.value).startswith(message)
    assert len(plan_windows(_info(250), SPEC, 0.04, 0.04, max_windows=250)) == 250  # one frame, at the limit


def test_windows_get_the_right_frames(write_numbered_video, frame_numbers, tmp_path):
    path = write_numbered_video(tmp_path / "numbered.avi", num_frames=100)
    info = probe(path)
    windows = plan_windows(info, SPEC, 1.0, 0.5)
    clips = list(window_clips(path, info, windows, size=48))
    assert len(clips) == len(windows) == 7
    for window, clip in zip(windows, clips, strict=True):
        assert clip.shape == (4, 48, 64, 3)
        assert frame_numbers(clip) == np.minimum(window.indices, 99).tolist()


def test_streamed_frames_are_the_frames_read_frames_picks(real_video):
    """Rotated, 10-bit, full-range, out-of-order and frame-count-less videos: streaming picks the same frames."""
    info = probe(real_video)
    indices = np.unique(np.linspace(0, info.num_frames - 1, 9).round().astype(int))
    streamed = np.stack([frame for _, frame in stream_frames(real_video, indices, info, size=64)])
    assert np.array_equal(streamed, read_frames(real_video, indices, info, size=64))


def test_merge_segments_joins_neighbours_and_cuts_overlaps():
    windows = [Window(s, s + 2.0, np.array([])) for s in (0.0, 1.0, 2.0, 3.0)]
    segments = merge_segments(windows, ["A", "A", "B", "B"], [0.5, 0.7, 0.9, 0.8])
    assert segments == [
        {"label": "A", "start": 0.0, "end": 2.0, "score": pytest.approx(0.6)},
        {"label": "B", "start": 2.0, "end": 5.0, "score": pytest.approx(0.85)},
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, save_micro_model):
    return save_micro_model(tmp_path_factory.mktemp("model"))


class CountingPredictor:
    """The real predictor, counting its model calls."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def logits(self, clips):
        self.calls += 1
        return self.predictor.logits(clips)


def test_a_timeline_stops_when_asked(write_numbered_video, model_dir, tmp_path):
    """The server's timeouts: once should_stop says so, no more frames are decoded and no more model calls made."""
    video = write_numbered_video(tmp_path / "clip.avi", num_frames=100)
    counting = CountingPredictor(Predictor.from_pretrained(model_dir, device="cpu"))
    timeline = predict_timeline(counting, video, 0.04, 0.04, batch_size=1)  # 100 windows, one per model call
    assert len(timeline["windows"]) == counting.calls == 100
    counting.calls = 0
    with pytest.raises(CancelledError):
        predict_timeline(counting, video, 0.04, 0.04, batch_size=1, should_stop=lambda: counting.calls >= 3)
    assert counting.calls == 3
    asked = []
    with pytest.raises(CancelledError):  # asked while decoding too: stops before the first window is complete
        predict_timeline(counting, video, 4.0, 4.0, should_stop=lambda: asked.append(1) or len(asked) > 2)
    assert counting.calls == 3 and len(asked) == 3


def test_cli_refuses_windows_shorter_than_a_frame_or_too_many(write_numbered_video, model_dir, tmp_path, capsys):
    """vidcls predict --timeline --stride 1e-9: an error record naming the limit, at once, and no files."""
    video = write_numbered_video(tmp_path / "clip.avi", num_frames=110)
    out = tmp_path / "timelines"
    args = ["predict", "--timeline", str(video), "--model_dir", str(model_dir), "--timeline_dir", str(out)]
    assert main([*args, "--stride", "1e-9"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["error"] == (
        f"{video}: stride 1e-09 s is shorter than one frame of this video (0.04 s at 25 fps): pass at least 0.04"
    )
    assert main([*args, "--window", "0.04", "--max_windows", "100"]) == 1
    assert "makes 110 windows over this 4.4 s video, over the 100 limit (--max_windows)" in capsys.readouterr().out
    assert not out.exists()
    for bad, says in ((["--stride", "nan"], "--stride must be positive seconds, got nan"),
                      (["--window", "0"], "--window must be positive seconds, got 0"),
                      (["--max_windows", "0"], "--max_windows must be >= 1, got 0")):  # fmt: skip
        assert main([*args, *bad]) == 2
        assert says in capsys.readouterr().err


def test_cli_writes_timeline_json_and_plot(write_numbered_video, model_dir, tmp_path, capsys):
    video = write_numbered_video(tmp_path / "clip.avi", num_frames=110)
    (tmp_path / "broken.avi").write_bytes(b"not a video")
    out = tmp_path / "timelines"
    args = ["predict", "--timeline", str(video), str(tmp_path / "broken.avi"), "--model_dir", str(model_dir)]
    assert main([*args, "--window", "1", "--stride", "0.5", "--timeline_dir", str(out)]) == 1  # broken.avi
    ok, failed = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "broken.avi" in failed["error"] and ok["timeline"] == str(out / "clip.timeline.json")
    timeline = json.loads((out / "clip.timeline.json").read_text())
    assert (out / "clip.timeline.png").read_bytes().startswith(b"\x89PNG")
    assert rounded(timeline)["segments"] == ok["segments"] and len(timeline["windows"]) == 8  # 0, 0.5, ... 3, 3.4
    segments = timeline["segments"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == timeline["duration"] == 4.4
    assert all(a["end"] == b["start"] and a["label"] != b["label"] for a, b in pairwise(segments))
    assert all(0 < s["score"] <= 1 for s in segments)


def _write_long_video(path, num_frames: int, size=(64, 48), fps: int = 25):
    """A bar sweeping across the frame, the background changing every minute."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(num_frames):
            frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            frame[..., 2] = 60 * (i // (60 * fps))
            frame[:, (i // 10) % size[0]] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_memory_stays_flat_on_a_long_video(model_dir, tmp_path):
    """4 minutes: all its frames would take 55 MB; only a few windows' frames are ever held (traced peak)."""
    video = _write_long_video(tmp_path / "long.avi", num_frames=4 * 60 * 25)
    info = probe(video)
    all_frames = info.num_frames * info.height * info.width * 3
    windows = plan_windows(info, SPEC, 2.0, 1.0)
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    # Warm up first: the first decode and model call import modules and fill caches (a fixed ~1 MB).
    next(window_clips(video, info, windows[:1], size=48))
    predictor.predict_timeline(video, 4.0, 200.0)
    tracemalloc.start()
    try:
        count = sum(1 for _ in window_clips(video, info, windows, size=48))  # frames at full size
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        timeline = predictor.predict_timeline(video, 4.0, 4.0)
        _, timeline_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(windows) == 239
    assert streamed_peak < all_frames / 200, (streamed_peak, all_frames)  # measured: 1/400
    # The timeline decodes frames at the model's size (16 px short side): all of them would take 6 MB.
    all_small_frames = info.num_frames * 16 * 21 * 3
    # Also traced: one normalised float batch (NumPy on a CPU), 16 clips of the model's input, whatever the length.
    spec = predictor.spec
    float_batch = 16 * spec.num_frames * 3 * spec.image_size**2 * 4
    assert timeline_peak < all_small_frames / 20 + float_batch, (timeline_peak, all_small_frames, float_batch)
    assert timeline["segments"][-1]["end"] == 240.0 and len(timeline["windows"]) == 60


def test_timeline_files_go_beside_the_output_and_the_run_is_summed_up(
    write_numbered_video, model_dir, tmp_path, capsys, monkeypatch
):
    video = write_numbered_video(tmp_path / "clip.avi", num_frames=110)
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "results" / "preds.jsonl"
    args = ["predict", "--timeline", str(video), "--model_dir", str(model_dir), "--window", "2"]
    assert main([*args, "--output", str(output)]) == 0
    assert (tmp_path / "results" / "clip.timeline.json").is_file() and not (tmp_path / "timelines").exists()
    assert f"vidcls predict: 1 videos; written to {output}" in capsys.readouterr().err
    # Printed for people: scores rounded; the file keeps them whole.
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(output.read_text())
    assert [s["score"] for s in printed["segments"]] == [round(s["score"], 4) for s in saved["segments"]]
