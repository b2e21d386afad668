"""Accuracy per clip (the guide's number) and per video (clip scores averaged over the video's clips)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[-1])
    top = np.argsort(-scores, axis=-1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def video_scores(logits: np.ndarray, labels: np.ndarray, video_index: np.ndarray):
    """Average the clips' class probabilities per video -> (video ids, (V, K) scores, (V,) labels)."""
    probs = softmax(logits.astype(np.float64))
    videos, inverse = np.unique(video_index, return_inverse=True)
    sums = np.zeros((len(videos), probs.shape[1]))
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(videos))[:, None]
    video_labels = np.zeros(len(videos), dtype=np.int64)
    video_labels[inverse] = labels
    return videos, sums / counts, video_labels


def accuracy_report(logits, labels, video_index) -> dict[str, float]:
    """Top-1 and top-5 accuracy per video (``accuracy``, ``top5_accuracy``) and per clip (``clip_*``)."""
    logits, labels, video_index = np.asarray(logits), np.asarray(labels), np.asarray(video_index)
    _, scores, video_labels = video_scores(logits, labels, video_index)
    return {
        "accuracy": float(_top_k_hits(scores, video_labels, 1).mean()),
        "top5_accuracy": float(_top_k_hits(scores, video_labels, 5).mean()),
        "clip_accuracy": float(_top_k_hits(logits, labels, 1).mean()),
        "clip_top5_accuracy": float(_top_k_hits(logits, labels, 5).mean()),
        "num_videos": int(len(video_labels)),
        "num_clips": int(len(labels)),
    }


def compute_metrics(eval_prediction) -> dict[str, float]:
    """For the Trainer: its label_ids are (labels, video_index), see ``VideoTrainer``."""
    labels, video_index = eval_prediction.label_ids
    return accuracy_report(eval_prediction.predictions, labels, video_index)
