"""Dataset discovery: the guide's ``DATA/{train,val,test}/<Class>/<video>`` layout -> labelled records.

Labels are the sorted class folder names of the training split. A dataset may also be given as a
``.tar.gz`` archive of that layout, extracted once into ``<archive>.extracted/`` beside it (archives.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
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
HASH_CHUNK = 1 << 20  # 1 MiB reads keep memory flat on long videos
SHOWN_COPIES = 5  # sets of copies named in one message before "and N more"


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


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, blake2b of the content): the same digest under two names is the same video."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def find_duplicate_files(splits: dict[str, list[VideoRecord]]) -> list[list[tuple[str, VideoRecord]]]:
    """The same file in more than one split (a copy, a link, or one path listed twice): each set, as (split, record).

    Only files of equal size are hashed, so this reads next to nothing of a dataset without copies. Two
    different segments (start, end) of one file are not copies: whether they may sit in two splits is for
    their groups to say. Missing, unreadable and empty files are left to the checks that open them.
    """
    by_size: dict[int, list[tuple[str, VideoRecord]]] = defaultdict(list)
    for split, records in splits.items():
        for record in records:
            try:
                size = record.path.stat().st_size
            except OSError:
                continue
            if size:
                by_size[size].append((split, record))
    copies: dict[tuple, list[tuple[str, VideoRecord]]] = defaultdict(list)
    digests: dict[Path, str | None] = {}
    for candidates in by_size.values():
        if len({split for split, _ in candidates}) < 2:
            continue
        for split, record in candidates:
            path = record.path.resolve()
            if path not in digests:
                try:
                    digests[path] = file_digest(path)[1]
                except OSError:
                    digests[path] = None
            if digests[path] is not None:
                copies[digests[path], record.start, record.end].append((split, record))

    def order(item: tuple[str, VideoRecord]):  # train, val, test, then other splits; by path within each
        split, record = item
        return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split, str(record.path))

    found = [sorted(same, key=order) for same in copies.values() if len({split for split, _ in same}) > 1]
    return sorted(found, key=lambda same: order(same[0]))


def check_duplicate_files(splits: dict[str, list[VideoRecord]], allow: bool = False) -> None:
    """The same file in two splits measures memory, not generalisation: refuse it, or warn loudly with ``allow``."""
    copies = find_duplicate_files(splits)
    if not copies:
        return
    listed = "; ".join(" = ".join(f"{split}: {r.path}" for split, r in found) for found in copies[:SHOWN_COPIES])
    if len(copies) > SHOWN_COPIES:
        listed += f"; and {len(copies) - SHOWN_COPIES} more"
    if allow:
        logger.warning(
            "--allow_duplicates: the same file is in more than one split (%d such files), so scores on the split "
            "holding a copy are inflated: %s",
            len(copies),
            listed,
        )
        return
    raise DatasetError(
        f"the same file is in more than one split ({len(copies)} such files): {listed}; keep one copy in one "
        "split (vidcls check lists them all), or pass --allow_duplicates"
    )
