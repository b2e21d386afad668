"""The official split lists of UCF101 and HMDB51 -> manifest rows by split.

UCF101 (``ucfTrainTestlist/``): ``classInd.txt`` lines "1 ApplyEyeMakeup"; ``trainlist0N.txt`` lines
"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" (1-based class index); ``testlist0N.txt`` lines
"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" (the class is the folder).
HMDB51 (``testTrainMulti_7030_splits/``): per class ``<class>_test_split<N>.txt`` with lines "<video> <0|1|2>"
(1 = train, 2 = test, 0 = unused); the videos are ``<root>/<class>/<video>``.
Neither has a validation split: layouts.py carves one out of train, by group.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NoReturn

from vidcls.data.manifest import ManifestRow, PathScope
from vidcls.errors import DatasetError

HMDB_LIST = re.compile(r"^(?P<label>.+)_test_split(?P<fold>\d+)\.txt$")
HMDB_SPLITS = {"1": "train", "2": "test"}  # "0": not used in this fold


def find_list_folder(root: Path, is_list) -> Path | None:
    """The folder (``root`` or one of its subfolders) holding a file for which ``is_list(path)`` is true."""
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if any(is_list(p) and p.is_file() for p in folder.iterdir()):  # the name first: no stat per video
            return folder
    return None


def is_ucf101_list(path: Path) -> bool:
    return path.name == "classInd.txt"


def is_hmdb51_list(path: Path) -> bool:
    return HMDB_LIST.match(path.name) is not None


def read_ucf101(root: Path, list_dir: Path, fold: int, scope: PathScope | None = None) -> dict[str, list[ManifestRow]]:
    """UCF101 fold ``fold`` -> {"train": rows, "test": rows}; videos are found next to the list folder.

    ``scope`` is where the listed videos must lie (by default, in ``root``).
    """
    scope = scope or PathScope.of(root)
    classes = dict(fields for _, fields in _lines(list_dir / "classInd.txt", "<index> <Class>", parts=2))
    rows = {}
    for split in ("train", "test"):
        list_file = _fold_file(list_dir, f"{split}list{fold:02d}.txt", fold, "*list*.txt")
        entries = _lines(list_file, "<Class>/<video> [<class index>]", parts=(1, 2))
        videos = _video_root(root, list_dir, list_file, entries[0][1][0])
        rows[split] = [_ucf_row(list_file, line, entry, classes, videos, scope) for line, entry in entries]
    return rows


def _ucf_row(
    list_file: Path, line: int, entry: list[str], classes: dict[str, str], videos: Path, scope: PathScope
) -> ManifestRow:
    relative = entry[0]
    if len(entry) == 2:
        label = classes.get(entry[1])
        found = f"class index {entry[1]}"
    else:  # testlists give no index: the class is the folder (matched loosely, as the file names vary in case)
        by_lower = {name.lower(): name for name in classes.values()}
        label = by_lower.get(relative.split("/")[0].lower())
        found = f"class folder {relative.split('/')[0]!r}"
    if label is None:
        raise DatasetError(f"{list_file} line {line}: {found} is not in classInd.txt; use the lists of one release")
    return ManifestRow(_existing(videos, relative, list_file, line, scope), label)


def read_hmdb51(root: Path, list_dir: Path, fold: int, scope: PathScope | None = None) -> dict[str, list[ManifestRow]]:
    """HMDB51 fold ``fold`` -> {"train": rows, "test": rows}; videos are ``<root>/<class>/<video>``.

    ``scope`` is where the listed videos must lie (by default, in ``root``).
    """
    scope = scope or PathScope.of(root)
    list_files = sorted(p for p in list_dir.iterdir() if (m := HMDB_LIST.match(p.name)) and int(m["fold"]) == fold)
    if not list_files:
        _missing_fold(list_dir, f"<class>_test_split{fold}.txt", fold, "*_test_split*.txt")
    rows: dict[str, list[ManifestRow]] = {"train": [], "test": []}
    videos = None
    for list_file in list_files:
        label = HMDB_LIST.match(list_file.name)["label"]
        for line, (name, usage) in _lines(list_file, "<video> <0|1|2>", parts=2):
            if usage not in ("0", *HMDB_SPLITS):
                raise DatasetError(f"{list_file} line {line}: {usage!r} is not 0 (unused), 1 (train) or 2 (test)")
            videos = videos or _video_root(root, list_dir, list_file, f"{label}/{name}")
            if usage != "0":
                row = ManifestRow(_existing(videos, f"{label}/{name}", list_file, line, scope), label)
                rows[HMDB_SPLITS[usage]].append(row)
    return rows


def _lines(list_file: Path, expected: str, parts: int | tuple[int, ...]) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of each non-blank line; other field counts are errors."""
    counts = (parts,) if isinstance(parts, int) else parts
    try:
        text = list_file.read_text(encoding="utf-8")
    except OSError as err:
        raise DatasetError(f"cannot read split list {list_file} ({err.strerror})") from err
    entries = []
    for line, content in enumerate(text.splitlines(), 1):
        fields = content.split()
        if fields and len(fields) not in counts:
            raise DatasetError(f"{list_file} line {line}: expected '{expected}', found {content.strip()!r}")
        if fields:
            entries.append((line, fields))
    if not entries:
        raise DatasetError(f"{list_file} is empty; expected one '{expected}' per line")
    return entries


def _fold_file(list_dir: Path, name: str, fold: int, glob: str) -> Path:
    path = list_dir / name
    if not path.is_file():
        _missing_fold(list_dir, name, fold, glob)
    return path


def _missing_fold(list_dir: Path, name: str, fold: int, glob: str) -> NoReturn:
    folds = sorted({int(m[1]) for p in list_dir.glob(glob) if (m := re.search(r"(\d+)\.txt$", p.name))})
    raise DatasetError(
        f"--fold {fold}: no {name} in {list_dir} (folds found: {', '.join(map(str, folds)) or 'none'}); "
        "pass one of those"
    )


def _video_root(root: Path, list_dir: Path, list_file: Path, first_video: str) -> Path:
    """The folder that the list's paths are relative to: the dataset folder, the list folder or a neighbour."""
    candidates = [root, list_dir, list_dir.parent, *sorted(p for p in root.iterdir() if p.is_dir())]
    for folder in candidates:
        if (folder / first_video).is_file():
            return folder
    raise DatasetError(
        f"{list_file}: its first video {first_video} is not under {root} or its subfolders; "
        "put the class folders of the videos in the dataset folder"
    )


def _existing(videos: Path, relative: str, list_file: Path, line: int, scope: PathScope) -> Path:
    path = videos / relative
    scope.check(path, relative, f"{list_file} line {line}")
    if not path.is_file():
        raise DatasetError(f"{list_file} line {line}: video {path} not found; the lists and videos must match")
    return path
