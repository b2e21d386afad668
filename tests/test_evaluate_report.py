"""Multi-view evaluation: 3-crop views, video-level class metrics, and the report with its confusion matrix."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcls.cli import main
from vidcls.config import ClipSpec, EvalViews
from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import VideoRecord
from vidcls.data.transforms import EvalCrops, build_transform, crop_offsets, to_video_tensor
from vidcls.engine.metrics import (
    class_report,
    confusion_matrix,
    mean_class_accuracy,
    per_class_metrics,
    top_confusions,
)
from vidcls.errors import ConfigError

# ---- metrics on hand-made tables --------------------------------------------------------------------------------

# 6 videos of classes 0..2 (class 3 never appears): true -> predicted
TRUE = np.array([0, 0, 1, 2, 2, 2])
PREDICTED = np.array([0, 1, 1, 2, 0, 0])
NAMES = ["a", "b", "c", "d"]


def test_confusion_matrix_rows_are_true_columns_predicted():
    matrix = confusion_matrix(TRUE, PREDICTED, 4)
    expected = [[1, 1, 0, 0], [0, 1, 0, 0], [2, 0, 1, 0], [0, 0, 0, 0]]
    assert matrix.tolist() == expected and matrix.sum() == len(TRUE)


def test_per_class_precision_recall_f1_support():
    rows = per_class_metrics(confusion_matrix(TRUE, PREDICTED, 4), NAMES)
    #            precision  recall  f1    support
    expected = [(1 / 3, 1 / 2, 0.4, 2), (1 / 2, 1.0, 2 / 3, 1), (1.0, 1 / 3, 0.5, 3), (0.0, 0.0, 0.0, 0)]
    assert [row["label"] for row in rows] == NAMES
    for row, (precision, recall, f1, support) in zip(rows, expected, strict=True):
        assert row["precision"] == pytest.approx(precision) and row["recall"] == pytest.approx(recall)
        assert row["f1"] == pytest.approx(f1) and row["support"] == support


def test_mean_class_accuracy_ignores_classes_the_split_lacks():
    matrix = confusion_matrix(TRUE, PREDICTED, 4)
    assert mean_class_accuracy(matrix) == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    # Unlike overall accuracy (3/6), every class weighs the same whatever its size.
    assert mean_class_accuracy(confusion_matrix([0, 0, 0, 1], [0, 0, 0, 0], 2)) == pytest.approx(0.5)


def test_top_confusions_most_frequent_first_ties_in_class_order():
    matrix = np.array([[5, 1, 1], [3, 0, 1], [0, 3, 2]])
    assert top_confusions(matrix, ["a", "b", "c"], limit=3) == [
        {"true": "b", "predicted": "a", "count": 3},
        {"true": "c", "predicted": "b", "count": 3},
        {"true": "a", "predicted": "b", "count": 1},
    ]
    assert top_confusions(np.eye(3, dtype=int), ["a", "b", "c"]) == []  # no mistakes, no confusions


def test_class_report_is_per_video():
    # Video 0 (class 0): its clips disagree, right on average; video 1 (class 1): taken for class 0.
    logits = np.array([[4.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0]])
    report = class_report(logits, np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]), ["x", "y"])
    assert report["confusion_matrix"] == [[1, 0], [1, 0]]
    assert report["mean_class_accuracy"] == pytest.approx(0.5)
    assert report["top_confusions"] == [{"true": "y", "predicted": "x", "count": 1}]
    assert report["labels"] == ["x", "y"] and [row["support"] for row in report["per_class"]] == [1, 1]


# ---- spatial views ----------------------------------------------------------------------------------------------


def _thirds(height: int, width: int, portrait: bool) -> np.ndarray:
    """(2, H, W, 3) frames whose thirds (left to right, or top to bottom) are red, green and blue."""
    frames = np.zeros((2, height, width, 3), dtype=np.uint8)
    third = (height if portrait else width) // 3
    for channel in range(3):
        part = slice(channel * third, (channel + 1) * third)
        if portrait:
            frames[:, part, :, channel] = 255
        else:
            frames[:, :, part, channel] = 255
    return frames


@pytest.mark.parametrize(("height", "width", "portrait"), [(96, 288, False), (288, 96, True)])
def test_three_crops_are_left_centre_right_or_top_centre_bottom(height, width, portrait):
    views = EvalCrops(ClipSpec(image_size=32), 3)(to_video_tensor(_thirds(height, width, portrait)))
    assert len(views) == 3
    for colour, view in enumerate(views):
        assert view.shape == (2, 3, 32, 32) and view.dtype == torch.uint8
        means = view.float().mean(dim=(0, 2, 3))  # per channel
        assert means.argmax() == colour and means[colour] > 200  # mostly red, green, blue in turn


def test_one_crop_keeps_the_resize_of_evaluation():
    frames = to_video_tensor(np.random.default_rng(0).integers(0, 256, (2, 40, 60, 3), dtype=np.uint8))
    spec = ClipSpec(image_size=32)
    (view,) = EvalCrops(spec, 1)(frames)
    assert torch.equal(view, build_transform(spec, train=False)(frames))


@pytest.mark.parametrize(
    ("length", "size", "crops", "expected"),
    [(300, 224, 3, [0, 38, 76]), (224, 224, 3, [0, 0, 0]), (300, 224, 1, [38]), (225, 224, 3, [0, 0, 1])],
)
def test_crop_offsets(length, size, crops, expected):
    assert crop_offsets(length, size, crops) == expected


def test_num_crops_is_validated_and_old_spec_files_load(tmp_path):
    with pytest.raises(ConfigError, match="--num_crops must be 1 or 3"):
        EvalViews(crops=2)
    # vidcls 0.1 saved views and augmentation with the model: read, and left out of its contract.
    saved = {"num_frames": 8, "sample_rate": 2, "image_size": 32, "eval_clips": 4, "hflip": False, "num_crops": 1}
    (tmp_path / "vidcls.json").write_text(json.dumps(saved))
    assert ClipSpec.load(tmp_path) == ClipSpec(num_frames=8, sample_rate=2, image_size=32)


def test_eval_items_hold_every_crop_training_items_one_clip(write_numbered_video, tmp_path):
    video = write_numbered_video(tmp_path / "v.avi", num_frames=40, size=(64, 48))
    spec = ClipSpec(num_frames=4, sample_rate=2, image_size=16)
    records = [VideoRecord(video, 0, "g")]
    eval_item = ClipDataset(records, spec, train=False, views=EvalViews(clips=2, crops=3))[0]
    assert eval_item["video"].shape == (3, 4, 3, 16, 16)  # (V, T, C, H, W)
    assert ClipDataset(records, spec, train=False)[0]["video"].shape == (4, 3, 16, 16)  # the Trainer's
    assert ClipDataset(records, spec, train=True)[0]["video"].shape == (4, 3, 16, 16)


# ---- the report of a tiny trained model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, motion_data, micro_config):
    output_dir = tmp_path_factory.mktemp("run") / "model"
    code = main(
        ["train", "--data_dir", str(motion_data), "--config_name", str(micro_config), "--output_dir", str(output_dir),
         "--sample_rate", "2", "--num_train_epochs", "1", "--dataloader_num_workers", "0",
         "--dataloader_persistent_workers", "false"]
    )  # fmt: skip
    assert code == 0
    return output_dir


@pytest.fixture(scope="module")
def data_with_bad_files(tmp_path_factory, motion_data):
    """The motion dataset with two unreadable files among the test videos."""
    root = tmp_path_factory.mktemp("eval") / "data"
    shutil.copytree(motion_data, root)
    (root / "test" / "DriftEast" / "bad_empty.avi").write_bytes(b"")
    (root / "test" / "DriftEast" / "bad_text.avi").write_text("a text file renamed .avi\n" * 20)
    return root


def _evaluate(model_dir, data_dir, output_file, *flags):
    return main(
        ["evaluate", "--model_dir", str(model_dir), "--data_dir", str(data_dir), "--num_workers", "0",
         "--output", str(output_file), *flags]
    )  # fmt: skip


def test_five_by_three_views_report(trained, data_with_bad_files, tmp_path, capsys):
    out = tmp_path / "eval_test.json"
    assert _evaluate(trained, data_with_bad_files, out, "--views", "5x3") == 0
    printed = capsys.readouterr().out
    assert "mean per-class accuracy" in printed and "views 5x3" in printed
    report = json.loads(out.read_text())
    assert report["num_videos"] == 16 and report["num_clips"] == 16 * 5 * 3  # videos x clips x crops
    assert (report["eval_clips"], report["num_crops"], report["views"]) == (5, 3, "5x3")
    for key in ("accuracy", "top5_accuracy", "clip_accuracy", "clip_top5_accuracy", "mean_class_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    # Bad files are counted and named, never dropped silently.
    assert report["num_skipped_videos"] == 2
    assert {e["path"].rsplit("/", 1)[-1] for e in report["skipped_videos"]} == {"bad_empty.avi", "bad_text.avi"}
    # The confusion matrix: 8 x 8, one count per scored video, in the JSON, the CSV and the PNG.
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (8, 8) and matrix.sum() == report["num_videos"]
    assert len(report["labels"]) == 8 and sum(row["support"] for row in report["per_class"]) == 16
    assert np.trace(matrix) / matrix.sum() == pytest.approx(report["accuracy"])
    with open(report["confusion_matrix_csv"], newline="") as file:
        header, *rows = list(csv.reader(file))
    assert header[1:] == report["labels"] and [row[0] for row in rows] == report["labels"]
    assert np.array([row[1:] for row in rows], dtype=int).tolist() == matrix.tolist()
    assert report["confusion_matrix_csv"] == str(tmp_path / "eval_test.confusion_matrix.csv")
    assert (tmp_path / "eval_test.confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    for confusion in report["top_confusions"]:
        assert confusion["true"] != confusion["predicted"] and confusion["count"] >= 1
    # Per-video predictions beside the report: one row per scored video, agreeing with the confusion matrix.
    assert report["predictions_csv"] == str(tmp_path / "eval_test.predictions.csv") and "predictions" in printed
    with open(report["predictions_csv"], newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["file", "true_label", "predicted_label", "score", "correct"]
    assert len(rows) == 16 and all(Path(row["file"]).is_file() for row in rows)
    assert sum(row["correct"] == "True" for row in rows) == np.trace(matrix)
    assert all((row["true_label"] == row["predicted_label"]) == (row["correct"] == "True") for row in rows)
    assert all(Path(row["file"]).parent.name == row["true_label"] for row in rows)
    wrong = [w["true_score"] for w in report["worst_videos"]]
    assert len(wrong) == min(10, 16 - np.trace(matrix)) and wrong == sorted(wrong)


def test_clip_and_crop_flags_override_the_preset(trained, motion_data, tmp_path):
    out = tmp_path / "report.json"
    assert _evaluate(trained, motion_data, out, "--views", "5x3", "--clips", "2") == 0
    report = json.loads(out.read_text())
    assert report["views"] == "2x3" and report["num_clips"] == 16 * 2 * 3


def test_old_eval_clips_flag_warns_and_scores_as_clips(trained, motion_data, tmp_path, capsys):
    new, old = tmp_path / "clips.json", tmp_path / "eval_clips.json"
    assert _evaluate(trained, motion_data, new, "--clips", "3") == 0
    assert "deprecated" not in capsys.readouterr().err
    assert _evaluate(trained, motion_data, old, "--eval_clips", "3") == 0
    assert "--eval_clips is deprecated; use --clips" in capsys.readouterr().err
    reports = [json.loads(path.read_text()) for path in (new, old)]
    assert reports[0]["views"] == "3x1" and reports[0]["num_clips"] == 16 * 3
    for key in ("views", "num_clips", "accuracy", "clip_accuracy"):
        assert reports[0][key] == reports[1][key]


@pytest.mark.parametrize("value", ["0", "-1"])
def test_bad_clips_are_a_one_line_error_naming_the_flag(trained, motion_data, tmp_path, value, capsys):
    assert _evaluate(trained, motion_data, tmp_path / "r.json", "--clips", value) == 2
    err = capsys.readouterr().err.strip()
    assert "--clips must be a positive integer" in err and len(err.splitlines()) == 1


def test_bad_views_name_the_format(trained, motion_data, tmp_path, capsys):
    assert _evaluate(trained, motion_data, tmp_path / "r.json", "--views", "5x2") == 2
    assert "CLIPSxCROPS" in capsys.readouterr().err


def test_torchrun_shards_the_videos_and_merges_the_report(trained, data_with_bad_files, tmp_path):
    single, sharded = tmp_path / "single.json", tmp_path / "sharded.json"
    assert _evaluate(trained, data_with_bad_files, single, "--views", "2x3") == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vidcls",
               "evaluate", "--model_dir", str(trained), "--data_dir", str(data_with_bad_files), "--num_workers", "0",
               "--views", "2x3", "--output", str(sharded), "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("mean per-class accuracy") == 1  # one process prints
    one, merged = json.loads(single.read_text()), json.loads(sharded.read_text())
    assert merged["num_processes"] == 2
    for key in ("num_videos", "num_clips", "confusion_matrix", "num_skipped_videos"):
        assert merged[key] == one[key], key
    for key in ("accuracy", "clip_accuracy", "mean_class_accuracy"):
        assert merged[key] == pytest.approx(one[key], abs=1e-6), key
    assert sorted(e["path"] for e in merged["skipped_videos"]) == sorted(e["path"] for e in one["skipped_videos"])

    def rows(report):
        with open(report["predictions_csv"], newline="") as file:
            return sorted((r["file"], r["predicted_label"], r["correct"]) for r in csv.DictReader(file))

    assert rows(merged) == rows(one) and len(rows(one)) == one["num_videos"]
