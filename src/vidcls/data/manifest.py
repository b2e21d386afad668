"""Manifest files: one row per video, ``path,label[,group][,start,end][,split]``, as CSV or JSON Lines.

A CSV manifest has a header row; a JSONL manifest has one object per line with those keys. Paths are
relative to the manifest's folder, or absolute; once symlinks are resolved they must lie inside the dataset's
folder (``PathScope``). ``start``/``end`` (seconds) restrict a row to a segment of its video. A Hugging Face
``datasets`` video folder is the same thing: a ``metadata.csv`` or ``metadata.jsonl`` whose ``file_name``
column holds the path and whose other columns may carry anything.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from vidcls.data.archives import extracted_from
from vidcls.data.discovery import SPLITS
from vidcls.errors import DatasetError

COLUMNS = ("path", "label", "group", "start", "end", "split")
MANIFEST_SUFFIXES = (".csv", ".jsonl")
HF_METADATA = ("metadata.csv", "metadata.jsonl")
_FORMAT = "path,label[,group][,start,end][,split]"


@dataclass(frozen=True)
class ManifestRow:
    """A video (or a segment of one) with its class name; labels are numbered once every split is read."""

    path: Path
    label: str
    group: str | None = None
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class PathScope:
    """The folder that the videos a manifest (or split list) names must lie in, symlinks resolved.

    A listing from an archive may only name the archive's own files, always: it could otherwise make vidcls
    read any file on the machine. The user's own listings may name videos elsewhere with --allow_outside_paths.
    """

    folder: Path
    archive: Path | None = None  # the archive that ``folder`` was extracted from
    allow_outside: bool = False

    @classmethod
    def of(cls, folder: Path, allow_outside: bool = False) -> PathScope:
        """The whole extracted folder when ``folder`` lies in one vidcls extracted, else ``folder`` itself."""
        if extracted := extracted_from(folder):
            return cls(*extracted)
        return cls(folder, None, allow_outside)

    @cached_property
    def _resolved(self) -> Path:  # once, not per row of a long manifest
        return self.folder.resolve()

    def check(self, path: Path, listed: str, where: str) -> None:
        """Refuse ``path`` (written ``listed`` at ``where``, e.g. "list.csv line 3") if it resolves outside."""
        if self.allow_outside or path.resolve().is_relative_to(self._resolved):
            return
        if self.archive is not None:
            raise DatasetError(
                f"{where}: {listed!r} is outside {self.folder}, the folder extracted from {self.archive}; "
                "an archive may only list its own files"
            )
        raise DatasetError(
            f"{where}: {listed!r} is outside {self.folder} (it resolves to {path.resolve()}); move the video into "
            "that folder, or pass --allow_outside_paths if you trust this list"
        )


def read_manifest(manifest: Path, scope: PathScope | None = None) -> dict[str | None, list[ManifestRow]]:
    """Rows of a manifest by split; the key is None for every row when the manifest has no split column.

    Args:
        manifest: a .csv or .jsonl file.
        scope: where its videos must lie; by default, in the manifest's folder.

    Raises:
        DatasetError: naming the manifest and line, for a bad header, value, missing video or path outside.
    """
    scope = scope or PathScope.of(manifest.parent)
    hf_folder = manifest.name in HF_METADATA
    raw_rows = _csv_rows(manifest) if manifest.suffix.lower() == ".csv" else _jsonl_rows(manifest)
    rows: dict[str | None, list[ManifestRow]] = {}
    for line, raw in raw_rows:
        split, row = _parse_row(manifest, line, raw, hf_folder, scope)
        rows.setdefault(split, []).append(row)
    if not rows:
        raise DatasetError(f"{manifest} has no rows; add one line per video: {_FORMAT}")
    if None in rows and len(rows) > 1:
        raise DatasetError(f"{manifest}: some rows have a split and some do not; give every row a split, or none")
    return rows


def _csv_rows(manifest: Path) -> Iterator[tuple[int, dict]]:
    with _open(manifest) as file:
        reader = csv.DictReader(file)
        _check_columns(manifest, 1, reader.fieldnames or [], manifest.name in HF_METADATA)
        for raw in reader:
            if None in raw:  # DictReader keeps the values past the header's last column under None
                raise DatasetError(
                    f"{manifest} line {reader.line_num}: more values than the header's {len(reader.fieldnames)} "
                    "columns; quote values that hold commas"
                )
            yield reader.line_num, raw


def _jsonl_rows(manifest: Path) -> Iterator[tuple[int, dict]]:
    with _open(manifest) as file:
        for line, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{manifest} line {line}: not JSON ({err.msg}); write one object per line") from err
            if not isinstance(raw, dict):
                raise DatasetError(f"{manifest} line {line}: expected a JSON object with keys {_FORMAT}")
            _check_columns(manifest, line, list(raw), manifest.name in HF_METADATA)
            yield line, raw


def _open(manifest: Path):
    try:
        return manifest.open(newline="", encoding="utf-8-sig")  # -sig: spreadsheets save CSV with a BOM
    except OSError as err:
        raise DatasetError(f"cannot read manifest {manifest} ({err.strerror})") from err


def _check_columns(manifest: Path, line: int, names: list[str], hf_folder: bool) -> None:
    """Manifests must have path and label; Hugging Face metadata has file_name and may carry other columns."""
    path_key = "file_name" if hf_folder else "path"
    missing = [name for name in (path_key, "label") if name not in names]
    unknown = [] if hf_folder else [name for name in names if name not in COLUMNS]
    if missing or unknown:
        found = "missing " + ", ".join(missing) if missing else "unknown " + ", ".join(map(repr, unknown))
        expected = "file_name,label (Hugging Face video folder)" if hf_folder else _FORMAT
        raise DatasetError(f"{manifest} line {line}: {found} column(s); expected {expected}")


def _parse_row(
    manifest: Path, line: int, raw: dict, hf_folder: bool, scope: PathScope
) -> tuple[str | None, ManifestRow]:
    where = f"{manifest} line {line}"
    relative = _text(raw.get("file_name" if hf_folder else "path"))
    label = _text(raw.get("label"))
    if not relative or not label:
        raise DatasetError(f"{where}: empty {'path' if not relative else 'label'}; every row needs a path and a label")
    path = manifest.parent / relative
    scope.check(path, relative, where)
    if not path.is_file():
        raise DatasetError(f"{where}: video {relative!r} not found at {path}; paths are relative to the manifest")
    start, end = _seconds(where, raw, "start"), _seconds(where, raw, "end")
    if start is not None and end is not None and end <= start:
        raise DatasetError(f"{where}: end {end} is not after start {start}; give the segment in seconds")
    split = _text(raw.get("split")) if "split" in raw else None
    if hf_folder and split is None and Path(relative).parts[0] in SPLITS:
        split = Path(relative).parts[0]  # the datasets library reads train/..., test/... paths as splits
    if split is not None and split not in SPLITS:
        raise DatasetError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    return split, ManifestRow(path, label, _text(raw.get("group")) or None, start, end)


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _seconds(where: str, raw: dict, key: str) -> float | None:
    value = raw.get(key)
    if value is None or _text(value) == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError) as err:
        raise DatasetError(
            f"{where}: {key} {value!r} is not a number of seconds; write e.g. 2.5, or leave it empty"
        ) from err
    if not 0 <= seconds < float("inf"):
        raise DatasetError(f"{where}: {key} {value!r} must be a finite number of seconds, 0 or more")
    return seconds
