"""Evaluation on a labelled split: accuracy per video and per clip, and the videos that could not be scored."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import LabelMaps
from vidcls.data.layouts import LayoutOptions, load_dataset
from vidcls.engine.batching import ClipCollator, prepare_pixels
from vidcls.engine.metrics import accuracy_report
from vidcls.engine.predict import pick_device
from vidcls.errors import DatasetError
from vidcls.models.factory import load_trained
from vidcls.models.families import family_of

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
) -> dict:
    """Score every video of ``split`` of ``data_dir`` with the model in ``model_dir``; write and return the report.

    ``data_dir`` is any layout ``load_dataset`` reads; ``layout`` must match training's when the split is made by
    group (data without splits, val of the official lists), so that evaluation sees the same split.

    The report holds per-video top-1/top-5 accuracy (``accuracy``, ``top5_accuracy``: class scores averaged
    over ``eval_clips`` evenly spaced clips), the per-clip figures the guide reports (``clip_*``), and the
    videos that could not be scored with the reason.
    """
    model, spec = load_trained(model_dir)
    labels = LabelMaps.from_names(model.config.label2id)
    records = load_dataset(data_dir, layout or LayoutOptions(), labels).records(split, "--split")
    output_file = Path(output_file) if output_file else Path(model_dir) / f"eval_{split}.json"
    failure_log = output_file.with_suffix(".failures.jsonl")  # written by the decoding workers
    failure_log.unlink(missing_ok=True)
    dataset = ClipDataset(records, spec, train=False, failure_log=failure_log)
    input_name = family_of(model.config).input_name
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=ClipCollator(input_name)
    )
    device = pick_device(device)
    model.to(device)

    logits, clip_labels, video_index = [], [], []
    for batch in tqdm(loader, desc=f"evaluating {split}", unit="batch"):
        if not batch:
            continue
        batch = prepare_pixels({k: v.to(device) for k, v in batch.items()}, input_name, spec)
        logits.append(model(**{input_name: batch[input_name]}).logits.float().cpu())
        clip_labels.append(batch["labels"].cpu())
        video_index.append(batch["video_index"].cpu())
    if not logits:
        raise DatasetError(f"no video of {data_dir}/{split} could be decoded; see the warnings above")

    video_index = torch.cat(video_index)
    report = accuracy_report(torch.cat(logits).numpy(), torch.cat(clip_labels).numpy(), video_index.numpy())
    report.update(split=split, data_dir=str(data_dir), model_dir=str(model_dir))
    report.update(_unscored(dataset, set(video_index.tolist()), failure_log))
    output_file.write_text(json.dumps(report, indent=2) + "\n")
    report["output_file"] = str(output_file)
    return report


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
