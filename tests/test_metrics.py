import numpy as np
import pytest

from vidcls.engine.metrics import accuracy_report, video_scores


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
    assert report["top5_accuracy"] == 1.0  # k is capped at the number of classes


def test_each_video_counts_once_whatever_its_clip_count():
    logits = np.array([[1.0, 0.0]] * 5 + [[0.0, 1.0]])
    labels = np.array([0] * 5 + [0])
    video_index = np.array([3] * 5 + [7])  # video 3 has 5 clips, video 7 one
    assert accuracy_report(logits, labels, video_index)["accuracy"] == pytest.approx(0.5)


def test_clips_in_any_order():
    logits = np.random.default_rng(0).normal(size=(6, 4))
    labels = np.array([1, 2, 1, 2, 1, 2])
    order = np.array([0, 1, 0, 1, 0, 1])
    videos, scores, video_labels = video_scores(logits, labels, order)
    shuffled = np.array([5, 0, 3, 2, 1, 4])
    _, scores2, labels2 = video_scores(logits[shuffled], labels[shuffled], order[shuffled])
    assert np.allclose(scores, scores2) and (video_labels == labels2).all() and list(videos) == [0, 1]
