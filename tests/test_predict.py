"""vidcls predict over many videos: batching across videos, workers, bad files, atomic outputs, torchrun shards."""

import csv
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

from vidcls.cli import main
from vidcls.config import EvalViews
from vidcls.data.sampling import uniform_clips
from vidcls.engine.predict import Predictor
from vidcls.engine.predict_batch import expand_inputs, predict_records
from vidcls.engine.predict_output import write_records
from vidcls.engine.scoring import choose_workers, read_ahead
from vidcls.errors import DecodeError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, save_micro_model):
    return save_micro_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory, write_numbered_video):
    """Five short videos of different lengths and sizes in nested folders, and a broken one among them."""
    root = tmp_path_factory.mktemp("videos")
    (root / "a" / "b").mkdir(parents=True)
    paths = [
        write_numbered_video(root / "a" / "v1.avi", 30),
        write_numbered_video(root / "a" / "v2.avi", 75, size=(80, 48)),
        write_numbered_video(root / "a" / "b" / "v3.avi", 9),
        write_numbered_video(root / "v4.avi", 120, fps=30),
    ]
    (root / "a" / "broken.avi").write_bytes(b"not a video")
    (root / "notes.txt").write_text("not a video either, and not picked up from a folder")
    return root, paths


def test_expand_inputs_reads_files_folders_and_globs(videos):
    root, paths = videos
    assert expand_inputs([str(root)]) == sorted(map(str, [*paths, root / "a" / "broken.avi"]))
    assert expand_inputs([str(root / "a" / "*.avi")]) == [
        str(root / "a" / n) for n in ("broken.avi", "v1.avi", "v2.avi")
    ]
    assert expand_inputs([str(root / "**" / "v3.avi"), str(paths[0])]) == [str(paths[2]), str(paths[0])]
    assert expand_inputs(["missing.mp4"]) == ["missing.mp4"]  # kept: it gets an error record


def test_batched_records_match_one_video_at_a_time(model_dir, videos):
    _, paths = videos
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    inputs = [str(paths[0]), "missing.mp4", *map(str, paths[1:])]
    expected = {path: predictor.predict(path, top_k=3) for path in map(str, paths)}
    # 3 clips per call: calls straddle videos (4 clips each); workers pass the decode error through.
    for workers in (0, 2):
        records = list(predict_records(predictor, inputs, top_k=3, batch_size=3, num_workers=workers))
        assert [r["video"] for r in records] == inputs
        assert "missing.mp4" in records[1]["error"] and "predictions" not in records[1]
        for record in records[:1] + records[2:]:
            labels, scores = zip(*[(p["label"], p["score"]) for p in record["predictions"]], strict=True)
            assert list(labels) == [p["label"] for p in expected[record["video"]]]
            assert np.allclose(scores, [p["score"] for p in expected[record["video"]]], atol=1e-6)


def test_views_flags_choose_the_clips_and_crops_a_video_is_scored_from(model_dir, videos, capsys):
    _, paths = videos
    wide = paths[1]  # 80 x 48
    views = Predictor.from_pretrained(model_dir, device="cpu", views=EvalViews(clips=2, crops=3)).clips_from_file(wide)
    assert views.shape[:2] == (2 * 3, 4)  # 2 clips x 3 crops, 4 frames each
    expected = Predictor.from_pretrained(model_dir, device="cpu", views=EvalViews(clips=2, crops=3)).predict(wide, 2)
    assert main(["predict", str(wide), "--model_dir", str(model_dir), "--views", "2x3", "--top_k", "2",
                 "--num_workers", "0"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out.splitlines()[0])["predictions"]
    assert [p["label"] for p in printed] == [p["label"] for p in expected]
    assert np.allclose([p["score"] for p in printed], [p["score"] for p in expected], atol=1e-4)  # printed rounded


def test_clips_flag_and_its_old_name_score_the_same_clips(model_dir, videos, capsys):
    _, paths = videos
    long = paths[3]  # 120 frames: room for 3 distinct clips
    expected = Predictor.from_pretrained(model_dir, device="cpu", views=EvalViews(clips=3)).predict(long, 2)
    printed = []
    for flag in ("--clips", "--eval_clips"):
        assert main(["predict", str(long), "--model_dir", str(model_dir), flag, "3", "--top_k", "2",
                     "--num_workers", "0"]) == 0  # fmt: skip
        out, err = capsys.readouterr()
        printed.append(json.loads(out.splitlines()[0])["predictions"])
        assert ("--eval_clips is deprecated; use --clips" in err) == (flag == "--eval_clips")
    assert printed[0] == printed[1]
    assert [p["label"] for p in printed[0]] == [p["label"] for p in expected]
    assert np.allclose([p["score"] for p in printed[0]], [p["score"] for p in expected], atol=1e-4)
    assert main(["predict", str(long), "--model_dir", str(model_dir), "--clips", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--clips must be a positive integer, got 0" in err and len(err.splitlines()) == 1


def test_cli_writes_jsonl_and_csv_and_reports_failures(model_dir, videos, tmp_path):
    root, paths = videos
    out = tmp_path / "out"
    args = ["predict", str(root), "--model_dir", str(model_dir), "--top_k", "2", "--num_workers", "0"]
    assert main([*args, "--output", str(out / "preds.jsonl")]) == 1  # broken.avi failed, the rest went on
    records = [json.loads(line) for line in (out / "preds.jsonl").read_text().splitlines()]
    assert [r["video"] for r in records] == expand_inputs([str(root)])  # a/b/v3.avi, a/broken.avi, a/v1.avi, ...
    assert "error" in records[1] and all(len(r["predictions"]) == 2 for r in records if r is not records[1])

    assert main([*args, "--output", str(out / "preds.csv")]) == 1
    with (out / "preds.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["video", "rank", "label", "score", "error"]
    assert [r["rank"] for r in rows[:2]] == ["1", "2"] and rows[0]["label"] == records[0]["predictions"][0]["label"]
    assert rows[2]["video"].endswith("broken.avi") and rows[2]["error"] and rows[2]["label"] == ""
    assert sorted(p.name for p in out.iterdir()) == ["preds.csv", "preds.jsonl"]  # no temporary files left

    assert main([*args[:2], str(paths[0]), *args[2:], "--output", str(out / "preds.txt")]) == 2  # unknown suffix


def test_a_fifo_a_still_and_a_sound_get_error_records_the_rest_go_on(
    model_dir, videos, fifo, write_still, write_audio_only, tmp_path
):
    _, paths = videos
    still = write_still(tmp_path / "photo.mp4", "JPEG")
    sound = write_audio_only(tmp_path / "song.mp4")
    output = tmp_path / "preds.jsonl"
    inputs = [str(fifo), str(still), str(sound), str(paths[0])]
    args = ["predict", *inputs, "--model_dir", str(model_dir), "--num_workers", "0", "--output", str(output)]
    assert main(args) == 1  # and it returns: the FIFO is never opened
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["video"] for r in records] == inputs
    assert records[0]["error"] == f"{fifo}: is a FIFO (named pipe), not a regular file; pass a video file"
    assert records[1]["error"].startswith(f"{still}: is a still image (mjpeg read by jpeg_pipe), not a video")
    assert records[2]["error"].startswith(f"{sound}: no video stream")
    assert len(records[3]["predictions"]) == 3


def test_a_crash_never_leaves_half_a_file(tmp_path):
    target = tmp_path / "preds.jsonl"
    target.write_text("the previous, complete run\n")

    def records():
        yield {"video": "a.mp4", "predictions": []}
        raise RuntimeError("killed halfway")

    with pytest.raises(RuntimeError):
        write_records(records(), target)
    assert target.read_text() == "the previous, complete run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["preds.jsonl"]


def test_torchrun_two_processes(model_dir, videos, tmp_path):
    root, _ = videos
    output = tmp_path / "preds.jsonl"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vidcls"]
    args = ["predict", str(root), "--model_dir", str(model_dir), "--num_workers", "0", "--output", str(output)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=120)
    # torchrun exits with the first failing rank's code: 1, as broken.avi has an error record.
    assert result.returncode == 1, result.stderr[-2000:]
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["video"] for r in records] == expand_inputs([str(root)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.jsonl"]


def test_logits_match_transformers_called_by_hand(model_dir):
    """The same frames through vidcls and through the saved model + video processor: same logits."""
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 24, 32, 3), dtype=np.uint8)  # both sides resize them to 16 x 16
    ours = predictor.logits(predictor.clips_from_frames(frames))  # one row per clip
    indices = uniform_clips(len(frames), predictor.spec.num_frames, predictor.spec.sample_rate, 4)

    model = AutoModelForVideoClassification.from_pretrained(model_dir).eval()
    processor = AutoVideoProcessor.from_pretrained(model_dir)
    for clip, logits in zip(indices, ours, strict=True):
        inputs = processor([list(frames[clip])], return_tensors="pt")  # one video: a list of (H, W, 3) frames
        with torch.no_grad():
            theirs = model(**inputs).logits[0]
        assert (theirs - logits).abs().max() <= 1e-4


@pytest.mark.parametrize(
    ("decode_ms", "model_ms", "cores", "workers"),
    [
        (10, 80, 2, 0),  # model-bound on 2 cores: a worker would take half the model's cores
        (30, 30, 2, 0),  # even: not worth a process
        (80, 10, 2, 2),  # decode-bound: decode beside the model
        (50, 10, 16, 4),  # decode-bound with cores to spare: enough workers to feed the model
        (37, 17_040, 2, 0),  # VideoMAE-base on a CPU (BENCHMARKS.md "Scaling out"): the model is everything
    ],
)
def test_decoding_workers_are_chosen_from_measured_costs(decode_ms, model_ms, cores, workers):
    assert choose_workers(decode_ms / 1000, model_ms / 1000, cores) == workers


def test_unset_workers_time_the_first_videos_then_score_the_rest_alike(model_dir, videos, caplog):
    _, paths = videos
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    inputs = [str(p) for p in paths] * 2  # more than the videos timed inline first
    expected = list(predict_records(predictor, inputs, top_k=2, batch_size=4, num_workers=0))
    with caplog.at_level("INFO", logger="vidcls.engine.scoring"):
        chosen = list(predict_records(predictor, inputs, top_k=2, batch_size=4))
    assert "decoding workers (--num_workers)" in caplog.text
    assert [r["video"] for r in chosen] == inputs
    for got, want in zip(chosen, expected, strict=True):
        assert [p["label"] for p in got["predictions"]] == [p["label"] for p in want["predictions"]]
        assert np.allclose(
            [p["score"] for p in got["predictions"]], [p["score"] for p in want["predictions"]], atol=1e-6
        )


def test_without_workers_the_next_videos_are_read_while_the_model_runs():
    next_read = threading.Event()

    def items():
        yield "first"
        next_read.set()  # reading the second item started
        yield "second"
        raise DecodeError("third.avi: broken")

    reading = read_ahead(items())
    assert next(reading) == "first"
    # The caller still holds the first item (the model call), and the second is already being read.
    assert next_read.wait(timeout=30)
    assert next(reading) == "second"
    with pytest.raises(DecodeError, match="third.avi"):  # an error surfaces where it happened, in order
        next(reading)
