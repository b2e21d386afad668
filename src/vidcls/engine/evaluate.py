"""Evaluation on a labelled split: accuracy per video and per clip, class metrics, and the videos not scored.

Multi-view testing as in VideoMAE (https://arxiv.org/abs/2203.12602): ``--clips`` evenly spaced clips x
``num_crops`` spatial crops per video ("5x3" in the paper), each view scored alone, class probabilities averaged
per video.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from vidcls.config import EvalViews
from vidcls.data.discovery import LabelMaps, VideoRecord
from vidcls.data.layouts import LayoutOptions, load_dataset
from vidcls.engine.distributed import gather, my_share, process_device, rank_and_world
from vidcls.engine.metrics import accuracy_report, class_report, video_predictions, worst_videos
from vidcls.engine.predict import Predictor, pick_device
from vidcls.engine.run_record import check_not_trained_on, saved_layout
from vidcls.engine.scoring import score
from vidcls.errors import DatasetError
from vidcls.models.factory import trained_config

logger = logging.getLogger(__name__)


def evaluate(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str = "test",
    *,
    layout: LayoutOptions | None = None,
    batch_size: int = 8,
    num_workers: int | None = None,
    device: str = "auto",
    output_file: str | Path | None = None,
    views: EvalViews = EvalViews(),
    use_saved_split: bool = True,
    allow_train_overlap: bool = False,
    ray=None,
) -> dict:
    """Score every video of ``split`` of ``data_dir`` with the model in ``model_dir``; write and return the report.

    ``data_dir`` is any layout ``load_dataset`` reads. A split made by group (data without splits, val of the
    official lists) is made as in training: with ``use_saved_split`` the split options saved with the model
    (split.json) replace those of ``layout``. A split holding videos the model was trained on is refused unless
    ``allow_train_overlap``. Each video is scored from ``views``; the report is ``evaluate_records``'s, written to
    ``output_file`` (default ``<model_dir>/eval_<split>.json``).

    Under ``torchrun --nproc_per_node N -m vidcls evaluate`` each process scores its share of the videos
    (``engine.distributed``) and process 0 writes the files. With ``ray`` (an ``engine.ray_engine.RayEngine`` of
    the same model) Ray's actors score them, each on its ``ray.device``, and this process only reads labels.
    """
    # With Ray the actors score, each on ray.device: this process's copy only reads labels and views.
    device = "cpu" if ray else process_device(device)  # under torchrun, "auto" is this process's own GPU
    pick_device(device)  # flags and data are checked before the model loads
    labels = LabelMaps.from_names(trained_config(model_dir).label2id)
    layout = layout or LayoutOptions()
    layout = saved_layout(model_dir, layout) if use_saved_split else layout
    records = load_dataset(data_dir, layout, labels).records(split, "--eval_split")
    check_not_trained_on(Path(model_dir), split, records, allow_train_overlap)
    predictor = Predictor.from_pretrained(model_dir, device, views=views)
    report = evaluate_records(
        predictor,
        records,
        output_file=Path(output_file) if output_file else Path(model_dir) / f"eval_{split}.json",
        title=f"{Path(model_dir).name} on {split}",
        about={"split": split, "data_dir": str(data_dir), "model_dir": str(model_dir)},
        batch_size=batch_size,
        num_workers=num_workers,
        ray=ray,
    )
    return report


def evaluate_records(
    predictor: Predictor,
    records: list[VideoRecord],
    *,
    output_file: str | Path | None,
    title: str = "",
    about: dict | None = None,
    batch_size: int = 8,
    num_workers: int | None = None,
    ray=None,
) -> dict:
    """Score labelled videos with ``predictor`` (PyTorch or ONNX); return the report and write it (process 0).

    The report holds per-video top-1/top-5 accuracy (``accuracy``, ``top5_accuracy``: class scores averaged over
    the predictor's views), the per-view figures (``clip_*``, ``num_clips`` = views scored = videos x clips x crops
    when all decode), video-level class metrics (``mean_class_accuracy``, ``per_class``, ``top_confusions``,
    ``confusion_matrix`` with rows = true class), and the videos not scored or scored from only some clips, with
    the reason (``skipped_videos``, ``partially_scored``). Next to ``output_file`` go the per-video predictions
    (CSV) and the confusion matrix (CSV and PNG); without it nothing is written. ``about`` (what was evaluated)
    heads the report; ``batch_size`` counts views per model call. The returned report also holds the per-video
    ``predictions``. With ``ray`` (an ``engine.ray_engine.RayEngine``) the videos are scored on a Ray cluster.
    """
    rank, world = rank_and_world()
    scored = score(
        predictor,
        my_share(records),
        batch_size=batch_size,
        num_workers=num_workers,
        partial=True,
        progress="evaluating" if rank == 0 else None,
        ray=ray,
    )
    # Blocks in rank order, each in input order (Ray yields videos as they finish): all in input order.
    videos = [video for block in gather(sorted(scored, key=lambda video: video.index)) for video in block]
    scored_videos = [(record, video) for record, video in zip(records, videos, strict=True) if video.error is None]
    if not scored_videos:
        raise DatasetError(f"none of the {len(records)} videos could be decoded; see the warnings above")
    logits = np.concatenate([video.logits for _, video in scored_videos])  # (views, K)
    # Each view's video (its position among the scored) and true label.
    video_index = np.concatenate([np.full(len(video.logits), i) for i, (_, video) in enumerate(scored_videos)])
    view_labels = np.concatenate([np.full(len(video.logits), record.label) for record, video in scored_videos])

    views = predictor.reader.views
    report = {**(about or {}), **accuracy_report(logits, view_labels, video_index)}
    report.update(num_processes=world, eval_clips=views.clips, num_crops=views.crops, views=str(views))
    report["skipped_videos"] = [{"path": video.video, "reason": video.error} for video in videos if video.error]
    report["partially_scored"] = [{"path": video.video, "reason": video.problem} for video in videos if video.problem]
    report["num_skipped_videos"] = len(report["skipped_videos"])
    names = [predictor.id2label[i] for i in range(len(predictor.id2label))]
    report.update(class_report(logits, view_labels, video_index, names))
    files = [video.video for _, video in scored_videos]
    predictions = video_predictions(logits, view_labels, video_index, names, files)
    report["worst_videos"] = worst_videos(predictions)
    if output_file is not None:
        if rank == 0:
            _write_report(report, predictions, Path(output_file), title)
        report["output_file"] = str(output_file)
    report["predictions"] = predictions  # for callers in Python; the file holds them as CSV
    return report


def _write_report(report: dict, predictions: list[dict], output_file: Path, title: str) -> None:
    """The JSON report; next to it the per-video predictions as CSV and the confusion matrix as CSV and PNG
    (their paths go in the report)."""
    names, matrix = report["labels"], np.array(report["confusion_matrix"])
    stem = output_file.with_suffix("")  # eval_test.json -> eval_test.confusion_matrix.csv: splits never clash
    report["predictions_csv"] = str(write_predictions_csv(predictions, f"{stem}.predictions.csv"))
    report["confusion_matrix_csv"] = str(write_confusion_csv(matrix, names, f"{stem}.confusion_matrix.csv"))
    title = f"{title}: {report['num_videos']} videos, {report['views']} views"
    report["confusion_matrix_png"] = str(plot_confusion_matrix(matrix, names, f"{stem}.confusion_matrix.png", title))
    report["confusion_matrix"] = report.pop("confusion_matrix")  # last in the file: it is the longest part
    output_file.write_text(json.dumps(report, indent=2) + "\n")


def write_predictions_csv(predictions: list[dict], path: str | Path) -> Path:
    """One row per scored video: file, true_label, predicted_label, score, correct (full precision)."""
    path = Path(path)
    columns = ["file", "true_label", "predicted_label", "score", "correct"]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(predictions)
    return path


def write_confusion_csv(matrix: np.ndarray, names: list[str], path: str | Path) -> Path:
    """The confusion matrix as CSV: a header of predicted class names, then one row per true class."""
    path = Path(path)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["true \\ predicted", *names])
        for name, row in zip(names, matrix, strict=True):
            writer.writerow([name, *(int(count) for count in row)])
    return path


def plot_confusion_matrix(matrix: np.ndarray, names: list[str], path: str | Path, title: str = "") -> Path:
    """A PNG of the confusion matrix with class names on both axes and the non-zero counts in their cells.

    The figure grows with the number of classes (about 0.3 inch per class) and its text shrinks, so 100 classes
    stay readable; zero cells are left blank so that mistakes stand out.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    k = len(names)
    side = min(40.0, max(6.0, 0.3 * k + 3))  # inches
    label_size = max(6.0, min(10.0, 160 / k))  # points; 6 pt still fits a 3-digit count in a 0.3 inch cell
    count_size = max(6.0, min(10.0, 120 / k))
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    ax.set_xticks(range(k), names, rotation=90, fontsize=label_size)
    ax.set_yticks(range(k), names, fontsize=label_size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    dark = matrix.max() / 2
    for true, predicted in zip(*np.nonzero(matrix), strict=True):
        count = int(matrix[true, predicted])
        color = "white" if count > dark else "black"
        ax.text(predicted, true, str(count), ha="center", va="center", fontsize=count_size, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=100 if k <= 30 else 150)  # more pixels when the text is small
    plt.close(fig)
    return Path(path)
