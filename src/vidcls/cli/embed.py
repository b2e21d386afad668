"""Write one embedding per video (the model's features, averaged over its evaluation clips), with file and label.

DATA is a dataset in any layout vidcls train reads (every split; each row says which), a folder of videos (any
depth, unlabelled) or one video. --output emb.npy writes the (N, D) float32 array and emb.csv beside it (row,
file, label, split); emb.npz holds arrays embeddings, files, labels and splits; emb.parquet (needs pyarrow: the
parquet extra) holds columns file, label, split and embedding. MODEL_DIR is the folder of vidcls train or of
vidcls pretrain.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from vidcls.cli.flags import command_parser, split_namespace
from vidcls.config import EvalViews
from vidcls.settings import DeviceFlags, LayoutFlags


@dataclass
class EmbedArguments:
    _argument_group_name = "embed"

    model_dir: str = field(metadata={"help": "Output folder of vidcls train or vidcls pretrain."})
    output: str = field(metadata={"help": "emb.npy (+ emb.csv), emb.npz or emb.parquet."})
    clips: int = field(default=EvalViews.clips, metadata={"help": "Evenly spaced clips averaged per video."})

    def __post_init__(self):
        EvalViews(self.clips)  # a bad value fails with the flag, before the model loads


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__, EmbedArguments, DeviceFlags, LayoutFlags)
    parser.add_argument("data", metavar="DATA", help="A dataset, a folder of videos, or one video file.")
    return parser


def read_videos(data: str, layout) -> tuple[list, list[str], list[str]]:
    """(records, label names, splits) of every video DATA holds."""
    from vidcls.data.discovery import VIDEO_EXTENSIONS, VideoRecord
    from vidcls.data.layouts import load_dataset
    from vidcls.data.unlabelled import UNLABELLED, find_videos, is_plain_tree
    from vidcls.errors import DatasetError

    path = Path(data)
    if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
        return [VideoRecord(path, UNLABELLED, str(path))], [""], [""]
    if not path.exists() and not data.startswith("hf://"):
        raise DatasetError(f"DATA {data} does not exist")
    if is_plain_tree(path, layout):
        records = find_videos(path)
        return records, [""] * len(records), [""] * len(records)
    dataset = load_dataset(data, layout)
    records = [(split, r) for split, found in dataset.splits.items() for r in found]
    return [r for _, r in records], [dataset.labels.id2label[r.label] for _, r in records], [s for s, _ in records]


def run(args: argparse.Namespace) -> int:
    options, device, layout = split_namespace(args, EmbedArguments, DeviceFlags, LayoutFlags)
    from vidcls.engine.embed import check_output, embed_videos, load_encoder, write_embeddings  # torch: to run

    check_output(options.output)  # a missing pyarrow is said before any video is read
    records, names, splits = read_videos(args.data, layout.layout())
    model, spec = load_encoder(options.model_dir)
    found = embed_videos(model, spec, records, names, splits, device=device.device, batch_size=device.batch_size,
                         num_workers=device.num_workers, views=EvalViews(options.clips))  # fmt: skip
    written = write_embeddings(found, options.output)
    rows, dims = found.vectors.shape
    print(f"{rows} videos, {dims} dimensions: {', '.join(map(str, written))}")
    return 0
