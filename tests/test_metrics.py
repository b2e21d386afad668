import numpy as np
import pytest

from vidcls.engine.metrics import accuracy_report, labelled_video_scores, video_predictions, worst_videos


def test_video_accuracy_averages_clip_scores():
    # Video 0 (label 0): one confident right clip, one slightly wrong clip -> right on average.
    # Video 1 (label 1): both clips wrong.
    logits = np.array([[5.0, 0.0, 0.0], [0.0, 0.5, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    labels = np.array([0, 0, 1, 1])
    video_index = np.array([0, 0, 1, 1])
    report = accuracy_report(logits, labels, video_index)
    assert report["clip_accuracy"] == pytest.approx(0.25)
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["num_videos"] == 2 and report["num_clips"] == 4
    assert "top5_accuracy" not in report and "clip_top5_accuracy" not in report  # 3 classes: top-5 says nothing


def test_top5_is_reported_with_more_than_five_classes():
    logits = np.eye(6)[[1, 2]] + np.arange(6) * 0.01  # video 0 right (class 1); video 1 guesses 2, true 3
    report = accuracy_report(logits, np.array([1, 3]), np.array([0, 1]))
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["top5_accuracy"] == pytest.approx(1.0) and report["clip_top5_accuracy"] == pytest.approx(1.0)


def test_video_predictions_and_worst_videos():
    names, files = ["a", "b", "c"], ["v0.mp4", "v1.mp4", "v2.mp4"]
    # v0: right; v1 (true a): wrong, a little score for a; v2 (true c): wrong, almost nothing for c.
    logits = np.array([[4.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 5.0, -3.0], [0.0, 4.0, -3.0]])
    rows = video_predictions(logits, np.array([0, 0, 2, 2]), np.array([0, 1, 2, 2]), names, files)
    assert [(r["file"], r["true_label"], r["predicted_label"], r["correct"]) for r in rows] == [
        ("v0.mp4", "a", "a", True), ("v1.mp4", "a", "b", False), ("v2.mp4", "c", "b", False)
    ]  # fmt: skip
    assert all(0 < r["score"] <= 1 and r["score"] >= r["true_score"] for r in rows)
    assert [r["file"] for r in worst_videos(rows)] == ["v2.mp4", "v1.mp4"]
    assert worst_videos(rows, limit=1)[0]["file"] == "v2.mp4"


def test_each_video_counts_once_whatever_its_clip_count():
    logits = np.array([[1.0, 0.0]] * 5 + [[0.0, 1.0]])
    labels = np.array([0] * 5 + [0])
    video_index = np.array([3] * 5 + [7])  # video 3 has 5 clips, video 7 one
    assert accuracy_report(logits, labels, video_index)["accuracy"] == pytest.approx(0.5)


def test_clips_in_any_order():
    logits = np.random.default_rng(0).normal(size=(6, 4))
    labels = np.array([1, 2, 1, 2, 1, 2])
    order = np.array([0, 1, 0, 1, 0, 1])
    videos, scores, video_labels = labelled_video_scores(logits, labels, order)
    shuffled = np.array([5, 0, 3, 2, 1, 4])
    _, scores2, labels2 = labelled_video_scores(logits[shuffled], labels[shuffled], order[shuffled])
    assert np.allclose(scores, scores2) and (video_labels == labels2).all() and list(videos) == [0, 1]
