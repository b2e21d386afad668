"""One embedding per video: the features a model's head reads, averaged over the video's evaluation clips.

For retrieval, clustering and finding near-duplicates. Clips are those evaluation and prediction read
(``ClipDataset`` with ``train=False``: ``--clips`` evenly spaced clips, resized as in training). The
features are the classifier's input (VideoMAE: the mean-pooled, normalised tokens), so the folder of
``vidcls pretrain`` (its encoder; the head is never used) and of ``vidcls train`` both work.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForVideoClassification

from vidcls.config import ClipSpec, EvalViews
from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import VideoRecord
from vidcls.engine.batching import ClipCollator, prepare_pixels
from vidcls.engine.predict import pick_device
from vidcls.errors import ConfigError, MissingDependency
from vidcls.models.factory import trained_config
from vidcls.models.families import family_of

logger = logging.getLogger(__name__)

SUFFIXES = (".npy", ".npz", ".parquet")


@dataclass
class Embeddings:
    """(N, D) float32 embeddings and, per row, the video's file, label ("" when unlabelled) and split."""

    vectors: np.ndarray
    files: list[str]
    labels: list[str]
    splits: list[str]


def load_encoder(model_dir: str | Path):
    """The model of ``vidcls train`` or ``vidcls pretrain`` as a classifier whose head's input is the embedding."""
    try:
        trained_config(model_dir)
    except ConfigError as err:
        if "vidcls pretrain" not in str(err):  # a pretrained encoder is what embed is for
            raise
    spec = ClipSpec.load(model_dir)
    model = AutoModelForVideoClassification.from_pretrained(model_dir)  # a pretraining folder: its encoder
    family_of(model.config)
    if not isinstance(getattr(model, "classifier", None), torch.nn.Module):
        raise ConfigError(f"--model_dir {model_dir}: a {model.config.model_type} model without a classifier layer")
    return model.eval(), spec


@torch.inference_mode()
def embed_videos(
    model, spec: ClipSpec, records: list[VideoRecord], names: list[str], splits: list[str], *,
    device: str = "auto", batch_size: int = 8, num_workers: int | None = None, views: EvalViews = EvalViews(),
) -> Embeddings:  # fmt: skip
    """Average the head's input over each video's clips; unreadable videos are left out, with a warning.

    ``names[i]`` and ``splits[i]`` are the label name and split of ``records[i]``.
    """
    chosen = pick_device(device)
    model = model.to(chosen)
    input_name = family_of(model.config).input_name
    dataset = ClipDataset(records, spec, train=False, views=views)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=2 if num_workers is None else num_workers,  # unset: not chosen by timing here (yet)
        collate_fn=ClipCollator(input_name),
    )
    captured = {}
    hook = model.classifier.register_forward_hook(lambda module, args, output: captured.update(features=args[0]))
    sums, counts = None, torch.zeros(len(dataset.records))
    try:
        for batch in loader:
            if not batch:
                continue
            pixels = prepare_pixels({input_name: batch[input_name].to(chosen)}, input_name, spec)
            model(**pixels)
            features = captured["features"].float().reshape(len(batch["video_index"]), -1).cpu()  # (B, D)
            if sums is None:
                sums = torch.zeros(len(dataset.records), features.shape[1])
            sums.index_add_(0, batch["video_index"], features)
            counts.index_add_(0, batch["video_index"], torch.ones(len(features)))
    finally:
        hook.remove()
    if sums is None:
        raise ConfigError("no video could be read; see the warnings above")
    kept = counts > 0
    position = {id(record): i for i, record in enumerate(records)}
    rows = [position[id(record)] for record, ok in zip(dataset.records, kept.tolist(), strict=True) if ok]
    for skipped in dataset.skipped:
        logger.warning("no embedding for %s: %s", skipped.path, skipped.reason)
    vectors = (sums[kept] / counts[kept, None]).numpy().astype(np.float32)
    return Embeddings(
        vectors, [str(records[i].path) for i in rows], [names[i] for i in rows], [splits[i] for i in rows]
    )


def check_output(path: str | Path) -> Path:
    """The output's format from its suffix; parquet needs pyarrow (the parquet extra). Checked before any work."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--output {path}: name it .npy (with a .csv beside it), .npz or .parquet")
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise MissingDependency(
                f"--output {path}: writing parquet needs pyarrow; pip install 'vidcls[parquet]', or name it .npy"
            ) from None
    return path


def write_embeddings(found: Embeddings, path: str | Path) -> list[Path]:
    """.npy: the (N, D) array, and a CSV of the rows (file, label, split) beside it (``emb.npy`` -> ``emb.csv``);
    .npz: arrays ``embeddings``, ``files``, ``labels``, ``splits``; .parquet: columns file, label, split, embedding."""
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        # Plural names: np.savez's own first parameter is called "file".
        arrays = {"files": np.array(found.files), "labels": np.array(found.labels), "splits": np.array(found.splits)}
        np.savez(path, embeddings=found.vectors, **arrays)
        return [path]
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"file": found.files, "label": found.labels, "split": found.splits,
                          "embedding": list(found.vectors)})  # fmt: skip
        pq.write_table(table, path)
        return [path]
    np.save(path, found.vectors)
    rows = path.with_suffix(".csv")
    with rows.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["row", "file", "label", "split"])
        writer.writerows(zip(range(len(found.files)), found.files, found.labels, found.splits, strict=True))
    return [path, rows]
