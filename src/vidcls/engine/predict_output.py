"""Prediction records to files, written atomically, and sharding across ``torchrun`` processes.

A file appears complete or not at all: records go to a temporary file in the same folder, which is renamed
over the target only once every record is in (``os.replace`` is atomic within a file system), so a crash
never leaves half a file. Under ``torchrun`` each rank predicts one contiguous block of the inputs and
writes ``<output>.rank<k>``; rank 0 waits for every part and merges them, in input order, into ``<output>``.
Several machines need ``<output>`` on a file system they all see.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from vidcls.errors import ConfigError

logger = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
CSV_COLUMNS = ("video", "rank", "label", "score", "error")


def output_format(path: str | Path) -> str:
    """The output format, jsonl or csv, from the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"--output {path}: unknown suffix {suffix!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def csv_rows(record: dict) -> list[dict]:
    """One row per predicted label (rank 1 = best), or one row with the error."""
    if "error" in record:
        return [{"video": record["video"], "error": record["error"]}]
    return [
        {"video": record["video"], "rank": rank, "label": p["label"], "score": p["score"]}
        for rank, p in enumerate(record["predictions"], start=1)
    ]


@contextmanager
def atomic_open(path: str | Path):
    """A text file that replaces ``path`` on a clean exit and is removed on any error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same folder: the rename never crosses devices
    try:
        with temp.open("w", newline="") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_records(records: Iterable[dict], path: str | Path, fmt: str | None = None) -> int:
    """Write records as they come (JSON lines or CSV, from the suffix unless ``fmt``); return how many failed."""
    fmt = fmt or output_format(path)
    failures = 0
    with atomic_open(path) as file:
        writer = csv.DictWriter(file, CSV_COLUMNS) if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for record in records:
            failures += "error" in record
            if writer:
                writer.writerows(csv_rows(record))
            else:
                file.write(json.dumps(record) + "\n")
    return failures


# ---- torchrun ----


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes, from torchrun's environment (0 and 1 without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_distributed() -> bool:
    """Join torchrun's process group (gloo: only barriers pass through it); False when not under torchrun.

    Without MASTER_ADDR (ranks started some other way, or tests) ranks meet through the part files alone.
    """
    _, world = rank_and_world()
    if world < 2 or "MASTER_ADDR" not in os.environ or not torch.distributed.is_available():
        return False
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return True


def rank_device(device: str) -> str:
    """``auto`` picks this rank's own GPU (torchrun's LOCAL_RANK) when there are GPUs."""
    if device == "auto" and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def shard(items: list, rank: int, world: int) -> list:
    """The contiguous block of ``items`` for ``rank``: sizes differ by at most one, blocks in rank order."""
    start, stop = (len(items) * r // world for r in (rank, rank + 1))
    return items[start:stop]


def part_path(output: str | Path, rank: int) -> Path:
    output = Path(output)
    return output.with_name(f"{output.name}.rank{rank}")


def _wait_for(paths: list[Path], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while missing := [p for p in paths if not p.exists()]:
        if time.monotonic() > deadline:
            raise ConfigError(
                f"waited {timeout_s:.0f} s for {', '.join(map(str, missing))}; did a rank fail? "
                "(with several machines, --output must be on a file system they all see)"
            )
        time.sleep(0.2)


def _read_parts(parts: list[Path]) -> Iterator[dict]:
    for part in parts:
        with part.open() as file:
            yield from map(json.loads, file)


def merge_parts(output: str | Path, world: int, timeout_s: float = 3600.0) -> int:
    """Wait for every rank's part (JSON lines), write ``output`` in its format, in rank order; remove the parts.

    Returns the number of error records across all ranks.
    """
    parts = [part_path(output, r) for r in range(world)]
    _wait_for(parts, timeout_s)
    failures = write_records(_read_parts(parts), output)
    for part in parts:
        part.unlink()
    return failures


def gather_parts(output: str | Path, rank: int, world: int) -> int | None:
    """Once this rank's part is written: rank 0 merges all parts and returns the failures, others return None."""
    grouped = torch.distributed.is_available() and torch.distributed.is_initialized()
    if grouped:
        torch.distributed.barrier()  # every rank has renamed its part into place
    failures = merge_parts(output, world) if rank == 0 else None  # still polls: shared file systems can lag
    if grouped:
        torch.distributed.destroy_process_group()
    return failures
