"""Dataset discovery: the guide's ``DATA/{train,val,test}/<Class>/<video>`` layout -> labelled records.

Labels are the sorted class folder names of the training split. A dataset may also be given as a
``.tar.gz`` archive of that layout, extracted once into ``<archive>.extracted/`` beside it (archives.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from vidcls.data.archives import (
    DEFAULT_MAX_ARCHIVE_MEMBERS,
    DEFAULT_MAX_EXTRACT_GB,
    MARKER,
    extract_archive,
    is_archive,
)
from vidcls.errors import DatasetError

logger = logging.getLogger(__name__)

# The guide's five, then other containers FFmpeg reads that people still have videos in.
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov")
VIDEO_EXTENSIONS += (".m4v", ".mpg", ".mpeg", ".ogv", ".3gp", ".3g2", ".wmv", ".asf", ".flv", ".rm")
SPLITS = ("train", "val", "test")
# UCF101 names clips v_<Class>_g<group>_c<clip>; clips of one group come from one long video.
UCF_GROUP = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video, or a segment of it when ``start``/``end`` (seconds) are set."""

    path: Path
    label: int
    group: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class LabelMaps:
    label2id: dict[str, int]
    id2label: dict[int, str]

    @classmethod
    def from_names(cls, names) -> LabelMaps:
        names = sorted(names)
        return cls({name: i for i, name in enumerate(names)}, dict(enumerate(names)))

    @property
    def names(self) -> list[str]:
        return [self.id2label[i] for i in range(len(self.id2label))]


def group_of(path: Path) -> str:
    """The clip's group: ``<Class>_gNN`` for UCF101-style names, else the file itself (one group per video)."""
    match = UCF_GROUP.search(path.stem)
    return f"{path.parent.name}_g{int(match.group(1)):02d}" if match else str(path)


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def scan_split(split_dir: Path) -> dict[str, list[Path]]:
    """``split_dir/<Class>/<video>`` -> {class name: sorted video paths}. Empty class folders are errors."""
    classes = {}
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = sorted(p for p in class_dir.rglob("*") if _is_video(p))
        if not videos:
            raise DatasetError(
                f"class folder {class_dir} holds no videos (looked for {' '.join(VIDEO_EXTENSIONS)}); "
                "add videos or remove the folder"
            )
        classes[class_dir.name] = videos
    if not classes:
        raise DatasetError(f"no class folders under {split_dir}: expected {split_dir}/<Class>/<video>")
    return classes


def resolve_data_dir(
    data_dir: str | Path,
    *,
    max_extract_gb: float = DEFAULT_MAX_EXTRACT_GB,
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
) -> Path:
    """A dataset folder, or the folder holding the dataset of a ``.tar.gz`` archive (extracted once, within limits)."""
    path = Path(data_dir)
    if not path.exists():
        raise DatasetError(f"--data_dir {path} does not exist")
    if path.is_file():
        if is_archive(path):
            folder = extract_archive(path, max_extract_gb=max_extract_gb, max_archive_members=max_archive_members)
            return _dataset_in(folder)
        raise DatasetError(
            f"--data_dir {path} is a file; pass a dataset folder, a .tar.gz archive or a .csv/.jsonl manifest"
        )
    return path


def _dataset_in(folder: Path) -> Path:
    """The dataset in an extracted archive: its one top folder if it has only that (UCF101_subset/train/...).

    A manifest or list file next to that folder means the archive's top level is the dataset, so it is kept.
    """
    children = [p for p in folder.iterdir() if p.name != MARKER]
    if not any((folder / s).is_dir() for s in SPLITS) and len(children) == 1 and children[0].is_dir():
        return children[0]
    return folder


def load_split(
    data_dir: str | Path, split: str, labels: LabelMaps | None = None
) -> tuple[list[VideoRecord], LabelMaps]:
    """Records of one split. Without ``labels`` the split defines them (the training split does)."""
    root = resolve_data_dir(data_dir)
    split_dir = root / split
    if not split_dir.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(
            f"split folder {split_dir} not found (found: {', '.join(present) or 'nothing'}); "
            f"expected {root}/{{{','.join(SPLITS)}}}/<Class>/<video>"
        )
    classes = scan_split(split_dir)
    labels = labels or LabelMaps.from_names(classes)
    unknown = sorted(set(classes) - set(labels.label2id))
    if unknown:
        raise DatasetError(
            f"classes in {split_dir} that the model was not trained on: {', '.join(unknown)} "
            f"(known: {', '.join(labels.names)})"
        )
    records = [
        VideoRecord(path, labels.label2id[name], group_of(path)) for name, paths in classes.items() for path in paths
    ]
    return records, labels


def find_group_leaks(splits: dict[str, list[VideoRecord]]) -> dict[str, list[str]]:
    """Groups found in more than one split -> the splits holding them, in the order given."""
    found: dict[str, list[str]] = {}
    for split, records in splits.items():
        for group in sorted({r.group for r in records}):
            found.setdefault(group, []).append(split)
    return {group: names for group, names in found.items() if len(names) > 1}


def check_group_leakage(splits: dict[str, list[VideoRecord]]) -> None:
    """Clips of one group (one source video) in two splits make test scores meaningless: refuse them."""
    leaks = [f"{group} ({', '.join(names)})" for group, names in find_group_leaks(splits).items()]
    if leaks:
        shown = "; ".join(leaks[:5]) + (f"; and {len(leaks) - 5} more" if len(leaks) > 5 else "")
        raise DatasetError(f"groups found in more than one split: {shown}; move each group's clips into one split")
