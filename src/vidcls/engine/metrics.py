"""Accuracy per clip (the guide's number) and per video (clip scores averaged over the video's clips).

Class metrics (confusion matrix, per-class precision/recall/F1, mean per-class accuracy) are per video.
Pure NumPy: no scikit-learn needed.
"""

from __future__ import annotations

import numpy as np

from vidcls.data.clips import video_scores


def _top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[-1])
    top = np.argsort(-scores, axis=-1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def labelled_video_scores(logits: np.ndarray, labels: np.ndarray, video_index: np.ndarray):
    """``data.clips.video_scores`` with each video's label -> (video ids, (V, K) scores, (V,) labels)."""
    videos, scores = video_scores(logits, video_index)
    video_labels = np.zeros(len(videos), dtype=np.int64)
    video_labels[np.searchsorted(videos, video_index)] = labels
    return videos, scores, video_labels


def accuracy_report(logits, labels, video_index) -> dict[str, float]:
    """Top-1 accuracy per video (``accuracy``) and per clip (``clip_accuracy``), and top-5 (``top5_accuracy``,
    ``clip_top5_accuracy``) when there are more than 5 classes: with 5 or fewer it is always 1 and says nothing.
    """
    logits, labels, video_index = np.asarray(logits), np.asarray(labels), np.asarray(video_index)
    _, scores, video_labels = labelled_video_scores(logits, labels, video_index)
    report = {
        "accuracy": float(_top_k_hits(scores, video_labels, 1).mean()),
        "clip_accuracy": float(_top_k_hits(logits, labels, 1).mean()),
    }
    if logits.shape[-1] > 5:
        report["top5_accuracy"] = float(_top_k_hits(scores, video_labels, 5).mean())
        report["clip_top5_accuracy"] = float(_top_k_hits(logits, labels, 5).mean())
    return {**report, "num_videos": int(len(video_labels)), "num_clips": int(len(labels))}


def video_predictions(logits, labels, video_index, names: list[str], files) -> list[dict]:
    """One row per scored video: file, true and predicted label, the predicted score, and whether it was right.

    ``files[i]`` (a list or dict) names video ``i`` of ``video_index``; ``true_score`` (the score given to the
    true class) ranks mistakes: the lower it is, the worse the video was classified.
    """
    videos, scores, video_labels = labelled_video_scores(
        np.asarray(logits), np.asarray(labels), np.asarray(video_index)
    )
    predicted = scores.argmax(axis=1)
    return [
        {
            "file": files[video],
            "true_label": names[true],
            "predicted_label": names[guess],
            "score": float(row[guess]),
            "true_score": float(row[true]),
            "correct": bool(true == guess),
        }
        for video, row, true, guess in zip(
            videos.tolist(), scores, video_labels.tolist(), predicted.tolist(), strict=True
        )
    ]


def worst_videos(predictions: list[dict], limit: int = 10) -> list[dict]:
    """The misclassified videos, worst first: the lowest score for their true class."""
    return sorted((row for row in predictions if not row["correct"]), key=lambda row: row["true_score"])[:limit]


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true), np.asarray(predicted)), 1)
    return matrix


def per_class_metrics(matrix: np.ndarray, names: list[str]) -> list[dict]:
    """Precision, recall, F1 and support of each class from a confusion matrix (0 where undefined, as sklearn)."""
    hits = np.diag(matrix).astype(np.float64)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return [
        {"label": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for name, p, r, f, n in zip(names, precision, recall, f1, support, strict=True)
    ]


def mean_class_accuracy(matrix: np.ndarray) -> float:
    """Mean of the per-class recalls over the classes the split holds (absent classes would count as 0)."""
    support = matrix.sum(axis=1)
    present = support > 0
    return float((np.diag(matrix)[present] / support[present]).mean()) if present.any() else 0.0


def top_confusions(matrix: np.ndarray, names: list[str], limit: int = 10) -> list[dict]:
    """The most frequent mistakes, most first (ties in class order): ``[{"true", "predicted", "count"}]``."""
    off_diagonal = matrix * (1 - np.eye(len(matrix), dtype=matrix.dtype))
    true, predicted = np.nonzero(off_diagonal)
    order = np.lexsort((predicted, true, -off_diagonal[true, predicted]))[:limit]
    return [
        {"true": names[t], "predicted": names[p], "count": int(off_diagonal[t, p])}
        for t, p in zip(true[order], predicted[order], strict=True)
    ]


def class_report(logits, labels, video_index, names: list[str], num_confusions: int = 10) -> dict:
    """Video-level class metrics: confusion matrix, per-class P/R/F1, mean per-class accuracy, top confusions.

    Scores are averaged per video as in ``accuracy_report``; ``names[i]`` is class i (the logits' column i).
    """
    logits, labels, video_index = np.asarray(logits), np.asarray(labels), np.asarray(video_index)
    _, scores, video_labels = labelled_video_scores(logits, labels, video_index)
    matrix = confusion_matrix(video_labels, scores.argmax(axis=1), len(names))
    return {
        "mean_class_accuracy": mean_class_accuracy(matrix),
        "per_class": per_class_metrics(matrix, names),
        "top_confusions": top_confusions(matrix, names, num_confusions),
        "labels": list(names),
        "confusion_matrix": matrix.tolist(),
    }


def compute_metrics(eval_prediction) -> dict[str, float]:
    """For the Trainer: its label_ids are (labels, video_index), see ``VideoTrainer``."""
    labels, video_index = eval_prediction.label_ids
    predictions = np.asarray(eval_prediction.predictions)
    return accuracy_report(predictions.reshape(len(predictions), -1), labels, video_index)  # (N, 1, K) -> (N, K)
