"""Prediction records to files, written atomically.

A file appears complete or not at all: records go to a temporary file in the same folder, which is renamed
over the target only once every record is in (``os.replace`` is atomic within a file system), so a crash
never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
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


def _record_text(record: dict, fmt: str) -> str:
    """A record as the text it takes in a file: one JSON line, or its CSV rows."""
    if fmt == "jsonl":
        return json.dumps(record) + "\n"
    text = io.StringIO()
    csv.DictWriter(text, CSV_COLUMNS).writerows(csv_rows(record))
    return text.getvalue()


def _jsonl_records(path: Path) -> Iterator[tuple[str, int, bool]]:
    """(video, byte offset, complete) of each record of a JSON-lines file; only the last can be incomplete."""
    offset = 0
    with path.open("rb") as file:
        for number, line in enumerate(iter(file.readline, b""), start=1):
            if not line.endswith(b"\n"):
                yield "", offset, False  # cut short by a crash
                return
            try:
                video = json.loads(line)["video"]
            except (ValueError, KeyError, TypeError) as err:
                raise ConfigError(
                    f"--output {path}: line {number} is not a prediction record; move the file away to start afresh"
                ) from err
            yield video, offset, True
            offset += len(line)


def _csv_records(path: Path, rows_per_record: int) -> Iterator[tuple[str, int, bool]]:
    """(video, byte offset, complete) of each record of a CSV file: its rows, one per label, or one error row."""
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    starts = [0]  # byte offset of each line, then the end
    for line in lines:
        starts.append(starts[-1] + len(line))
    reader = csv.DictReader((line.decode() for line in lines), strict=True)  # strict: a quote left open fails
    records = []  # [video, offset, rows, error]
    row_start = 1  # the line the next row starts on (0 is the header)
    try:
        for row in reader:
            if not records or records[-1][0] != row["video"]:
                records.append([row["video"], starts[row_start], 0, bool(row["error"])])
            records[-1][2] += 1
            row_start = reader.line_num
    except csv.Error:  # an error message's quoted field cut short
        records.append(["", starts[row_start], -1, False])
    if data and not data.endswith(b"\n"):  # the last row (or the header) is cut short
        records = records[:-1] + [[records[-1][0], records[-1][1], -1, False]] if records else [["", 0, -1, False]]
    for video, offset, rows, error in records:
        yield video, offset, (error and rows == 1) or rows == rows_per_record


def resume_output(path: str | Path, rows_per_record: int) -> set[str]:
    """Make ``path`` ready for ``append_records`` after a crash; return the videos it already holds.

    Records a crash cut short are dropped from the end of the file: a last line without its newline, and in a CSV
    file a video with fewer than ``rows_per_record`` rows (labels) and no error. A missing file holds none.
    """
    path = Path(path)
    if not path.exists():
        return set()
    if output_format(path) == "jsonl":
        records = list(_jsonl_records(path))
    else:
        records = list(_csv_records(path, rows_per_record))
    size = path.stat().st_size
    while records and not records[-1][2]:
        size = records.pop()[1]
    if size < path.stat().st_size:
        logger.warning("%s: dropping the end of a record cut short by a crash; that video is predicted again", path)
        os.truncate(path, size)
    return {video for video, _, _ in records}


def append_records(records: Iterable[dict], path: str | Path) -> int:
    """Append records to ``path`` as they come, each flushed whole (JSON lines or CSV from the suffix, a CSV header
    when the file is new); return how many failed. A crash loses at most the record being written."""
    fmt = output_format(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    with path.open("a", newline="") as file:
        if fmt == "csv" and file.tell() == 0:
            csv.DictWriter(file, CSV_COLUMNS).writeheader()
        for record in records:
            failures += "error" in record
            file.write(_record_text(record, fmt))
            file.flush()  # in the kernel's hands: a killed process loses nothing written
        os.fsync(file.fileno())
    return failures


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
