"""Fill the frame cache's training entries ahead of training; under torchrun each process caches its own share.

Optional: ``vidcls train --cache_dir`` fills the same entries as it reads, and evaluation clips as it scores them.

With ``--engine ray`` Ray tasks share the videos, one CPU each, on every node; the cache folder must then be on
storage all nodes see.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from vidcls.cli.flags import command_parser, engine_jobs, split_namespace
from vidcls.config import ClipSpec
from vidcls.data.layouts import load_dataset
from vidcls.errors import ConfigError
from vidcls.settings import EngineFlags, LayoutFlags


@dataclass
class CacheArguments:
    _argument_group_name = "cache"

    data_dir: str = field(metadata={"help": "The dataset, as vidcls train takes it."})
    cache_dir: str = field(metadata={"help": "The cache folder (pass the same to vidcls train)."})
    image_size: int | None = field(default=None, metadata={"help": "The model's input size (224 for base models)."})
    model_name_or_path: str | None = field(default=None, metadata={"help": "Or: read the size from this checkpoint."})
    config_name: str | None = field(default=None, metadata={"help": "Or: read the size from this config (e.g. tiny)."})
    cache_max_gb: float = field(default=50.0, metadata={"help": "Disk budget."})
    cache_max_ratio: float = field(
        default=10.0, metadata={"help": "At most this many times the bytes of the source videos the cache holds."}
    )
    cache_codec: str = field(default="jpeg", metadata={"help": "jpeg or raw (pass the same to vidcls train)."})
    num_workers: int = field(default=2, metadata={"help": "Decoding processes (per torchrun process)."})

    def __post_init__(self):
        given = [name for name in ("image_size", "model_name_or_path", "config_name") if getattr(self, name)]
        if len(given) != 1:
            raise ConfigError("pass exactly one of --image_size, --model_name_or_path, --config_name (the input size)")


def build_parser() -> argparse.ArgumentParser:
    return command_parser(__doc__, CacheArguments, LayoutFlags, EngineFlags)


def run(args: argparse.Namespace) -> int:
    from vidcls.data.cache import FrameCache, fill_cache  # torch: loaded only to run, not for --help
    from vidcls.data.transforms import decode_size
    from vidcls.engine.distributed import my_share, rank_and_world
    from vidcls.models.factory import input_size

    _, layout, engine = split_namespace(args, CacheArguments, LayoutFlags, EngineFlags)
    size = args.image_size or input_size(args.model_name_or_path, args.config_name)
    spec = ClipSpec(image_size=size)
    # Training videos only: evaluation entries are the exact clips scored, stored by the first evaluation at no
    # extra decoding cost.
    records = load_dataset(args.data_dir, layout.layout()).splits.get("train", [])
    jobs = [(record.path, decode_size(spec, train=True)) for record in records]
    rank, world_size = rank_and_world()
    if engine.engine == "ray" and world_size > 1:
        raise ConfigError("--engine ray schedules the videos itself: run it without torchrun")
    cache = FrameCache(args.cache_dir, int(args.cache_max_gb * 1e9), args.cache_max_ratio, args.cache_codec)
    outcomes = fill_cache(cache, my_share(jobs), args.num_workers, engine_jobs(engine, "caching"))
    counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(outcomes.items()))
    print(f"[rank {rank}/{world_size}] {counts}; {cache.summary()}")
    for error in outcomes.get("error", []):
        print(f"  skipped: {error}")
    return 0
