"""Prediction records to files, written atomically.

A file appears complete or not at all: records go to a temporary file in the same folder, which is renamed
over the target only once every record is in (``os.replace`` is atomic within a file system), so a crash
never leaves half a file.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

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
