"""Evaluation on a labelled split: accuracy per video and per clip, class metrics, and the videos not scored.

Multi-view testing as in VideoMAE (https://arxiv.org/abs/2203.12602): ``eval_clips`` evenly spaced clips x
``num_crops`` spatial crops per video ("5x3" in the paper), each view scored alone, class probabilities averaged
per video.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import LabelMaps
from vidcls.data.layouts import LayoutOptions, load_dataset
from vidcls.engine.batching import ClipCollator, prepare_pixels
from vidcls.engine.metrics import accuracy_report, class_report, video_predictions, worst_videos
from vidcls.engine.predict import pick_device
from vidcls.engine.run_record import check_not_trained_on, saved_layout
from vidcls.errors import DatasetError
from vidcls.models.factory import load_trained, trained_config
from vidcls.models.families import class_logits, family_of

logger = logging.getLogger(__name__)


@torch.inference_mode()
def evaluate(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str = "test",
    *,
    layout: LayoutOptions | None = None,
    batch_size: int = 8,
    num_workers: int = 2,
    device: str = "auto",
    output_file: str | Path | None = None,
    eval_clips: int | None = None,
    num_crops: int | None = None,
    use_saved_split: bool = True,
    allow_train_overlap: bool = False,
) -> dict:
    """Score every video of ``split`` of ``data_dir`` with the model in ``model_dir``; write and return the report.

    ``data_dir`` is any layout ``load_dataset`` reads. A split made by group (data without splits, val of the
    official lists) is made as in training: with ``use_saved_split`` the split options saved with the model
    (split.json) replace those of ``layout``. A split holding videos the model was trained on is refused unless
    ``allow_train_overlap``.

    The report holds per-video top-1/top-5 accuracy (``accuracy``, ``top5_accuracy``: class scores averaged
    over ``eval_clips`` evenly spaced clips x ``num_crops`` crops), the per-view figures (``clip_*``,
    ``num_clips`` = views scored = videos x clips x crops when all decode), video-level class metrics
    (``mean_class_accuracy``, ``per_class``, ``top_confusions``, ``confusion_matrix`` with rows = true class),
    and the videos that could not be scored with the reason (``skipped_videos``, ``num_skipped_videos``).
    The confusion matrix is also written next to the report as CSV and PNG (``confusion_matrix_csv``/``_png``).

    ``eval_clips`` and ``num_crops`` override the model's saved values for this evaluation only; ``batch_size``
    counts views per model call, rounded down to whole clips. Under ``torchrun --nproc_per_node N -m vidcls
    evaluate`` the videos are shared out between the processes and their scores merged; process 0 writes the files.
    """
    device = pick_device(device)  # flags and data are checked before the model loads
    labels = LabelMaps.from_names(trained_config(model_dir).label2id)
    layout = layout or LayoutOptions()
    layout = saved_layout(model_dir, layout) if use_saved_split else layout
    records = load_dataset(data_dir, layout, labels).records(split, "--eval_split")
    check_not_trained_on(Path(model_dir), split, records, allow_train_overlap)
    model, spec = load_trained(model_dir)
    overrides = {"eval_clips": eval_clips, "num_crops": num_crops}
    spec = replace(spec, **{name: value for name, value in overrides.items() if value is not None})
    output_file = Path(output_file) if output_file else Path(model_dir) / f"eval_{split}.json"
    # Under torchrun each process scores every world-th video and logs its decoding failures to a file of its own.
    rank, world, own_group = _process_group()
    failure_log = output_file.with_suffix(".failures.jsonl" if world == 1 else f".failures.{rank}.jsonl")
    failure_log.unlink(missing_ok=True)  # written by the decoding workers
    dataset = ClipDataset(records[rank::world], spec, train=False, failure_log=failure_log, num_crops=spec.num_crops)
    input_name = family_of(model.config).input_name
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=max(1, batch_size // spec.num_crops),
        num_workers=num_workers,
        collate_fn=ClipCollator(input_name),
    )
    if world > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per process
    model.to(device)
    scored = _score_views(model, loader, input_name, spec, device, desc=f"evaluating {split}", quiet=rank > 0)
    unscored = _unscored(dataset, set(scored[2].tolist()), failure_log)
    scored = (scored[0], scored[1], rank + world * scored[2])  # shard position -> an id unique in the split
    files = {rank + world * i: str(record.path) for i, record in enumerate(dataset.records)}  # id -> its video
    if world > 1:
        scored, unscored, files = _gather(scored, unscored, files, close=own_group)
    logits, view_labels, video_index = scored
    if len(logits) == 0:
        raise DatasetError(f"no video of {data_dir}/{split} could be decoded; see the warnings above")

    report = accuracy_report(logits, view_labels, video_index)
    report.update(split=split, data_dir=str(data_dir), model_dir=str(model_dir), num_processes=world)
    report.update(eval_clips=spec.eval_clips, num_crops=spec.num_crops, views=f"{spec.eval_clips}x{spec.num_crops}")
    report.update(unscored, num_skipped_videos=len(unscored["skipped_videos"]))
    names = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    report.update(class_report(logits, view_labels, video_index, names))
    predictions = video_predictions(logits, view_labels, video_index, names, files)
    report["worst_videos"] = worst_videos(predictions)
    if rank == 0:
        _write_report(report, predictions, output_file, title=f"{Path(model_dir).name} on {split}")
    report["output_file"] = str(output_file)
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


def _process_group() -> tuple[int, int, bool]:
    """(rank, number of processes, whether this call started the group) under ``torchrun``; (0, 1, False) otherwise.

    The group uses gloo whatever the device: it only exchanges the scores once, at the end.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, False
    import torch.distributed as dist

    started = not dist.is_initialized()
    if started:
        dist.init_process_group("gloo")
    return dist.get_rank(), world, started


def _gather(scored: tuple, unscored: dict, files: dict, close: bool) -> tuple[tuple, dict, dict]:
    """Every process's scores, unscored videos and video files, merged (each process gets the whole result)."""
    import torch.distributed as dist

    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (scored, unscored, files))
    if close:
        dist.destroy_process_group()
    kept = [part[0] for part in parts if len(part[0][0])]  # a shard may have no video decoded
    merged = tuple(np.concatenate(arrays) for arrays in zip(*kept, strict=True)) if kept else scored
    lists = {key: [entry for part in parts for entry in part[1][key]] for key in unscored}
    return merged, lists, {video: file for part in parts for video, file in part[2].items()}


def _score_views(model, loader, input_name: str, spec, device, desc: str, quiet: bool = False):
    """Logits of every view the loader yields, with its video's label and index: NumPy (N, K), (N,), (N,)."""
    logits, view_labels, video_index = [], [], []
    for batch in tqdm(loader, desc=desc, unit="batch", disable=quiet):
        if not batch:
            continue  # every clip of the batch failed to decode
        pixels = batch[input_name]
        views = pixels.shape[1] if pixels.ndim == 6 else 1
        if views > 1:  # (B, V, T, C, H, W) -> (B*V, T, C, H, W): each crop is scored as a clip of its own
            pixels = pixels.flatten(0, 1)
        inputs = prepare_pixels({input_name: pixels.to(device)}, input_name, spec)
        logits.append(class_logits(model(**inputs).logits).float().cpu())
        # A clip's V views follow each other in the flattened batch, so labels and indices repeat in place.
        view_labels.append(batch["labels"].repeat_interleave(views))
        video_index.append(batch["video_index"].repeat_interleave(views))
    if not logits:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return torch.cat(logits).numpy(), torch.cat(view_labels).numpy(), torch.cat(video_index).numpy()


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


def _unscored(dataset: ClipDataset, scored: set[int], failure_log: Path) -> dict[str, list[dict]]:
    """Videos not scored at all (``skipped_videos``) and those scored from only some clips (``partially_scored``)."""
    failures = {}
    if failure_log.exists():
        failures = {e["path"]: e["reason"] for e in map(json.loads, failure_log.read_text().splitlines())}
        failure_log.unlink()
    skipped = [vars(s) for s in dataset.skipped]
    partial = []
    for i, record in enumerate(dataset.records):
        path = str(record.path)
        if i not in scored:
            skipped.append({"path": path, "reason": failures.get(path, "no clip could be decoded")})
        elif path in failures:
            partial.append({"path": path, "reason": failures[path]})
    return {"skipped_videos": skipped, "partially_scored": partial}
