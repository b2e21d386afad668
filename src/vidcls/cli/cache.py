"""Fill the decoded-frame cache ahead of training; under torchrun each process caches its own share."""

from __future__ import annotations

import argparse
import os

from vidcls.cli.layout_flags import add_layout_arguments, layout_options
from vidcls.config import ClipSpec
from vidcls.data.cache import FrameCache, fill_cache
from vidcls.data.layouts import load_dataset
from vidcls.data.transforms import decode_size
from vidcls.models.factory import input_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="The dataset, as vidcls train takes it.")
    add_layout_arguments(parser)
    parser.add_argument("--cache_dir", required=True, help="The cache folder (pass the same to vidcls train).")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--image_size", type=int, help="The model's input size (224 for base models).")
    size.add_argument("--model_name_or_path", help="Read the input size from this checkpoint's config.")
    size.add_argument("--config_name", help="Read the input size from this config (e.g. tiny).")
    parser.add_argument("--cache_max_gb", type=float, default=50.0, help="Disk budget.")
    parser.add_argument("--num_workers", type=int, default=2, help="Decoding processes (per torchrun process).")
    return parser


def shard(items: list, rank: int, world_size: int) -> list:
    """This process's share: every world_size-th item from rank (torchrun sets RANK and WORLD_SIZE)."""
    return items[rank::world_size]


def run(args: argparse.Namespace) -> int:
    size = args.image_size or input_size(args.model_name_or_path, args.config_name)
    spec = ClipSpec(image_size=size)
    jobs = [
        (record.path, decode_size(spec, train=split == "train"))
        for split, records in load_dataset(args.data_dir, layout_options(args)).splits.items()
        for record in records
    ]
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cache = FrameCache(args.cache_dir, int(args.cache_max_gb * 1e9))
    outcomes = fill_cache(cache, shard(jobs, rank, world_size), args.num_workers)
    counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(outcomes.items()))
    print(f"[rank {rank}/{world_size}] {counts}; {cache.summary()}")
    for error in outcomes.get("error", []):
        print(f"  skipped: {error}")
    return 0
