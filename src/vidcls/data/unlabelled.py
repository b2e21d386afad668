"""The videos self-supervised pretraining reads: a labelled dataset's training split, or any tree of video files.

Labels are not needed, so a plain folder of videos (any depth) works. From a labelled dataset only the training
split is used: pretraining on the videos a model is later evaluated on would inflate those scores. Other folders
are added only when named (``--extra_unlabelled_dir``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from vidcls.data.discovery import SPLITS, VIDEO_EXTENSIONS, VideoRecord
from vidcls.data.layouts import LayoutOptions, load_dataset
from vidcls.data.manifest import HF_METADATA
from vidcls.data.split_lists import find_list_folder, is_hmdb51_list, is_ucf101_list
from vidcls.errors import DatasetError

logger = logging.getLogger(__name__)

UNLABELLED = -1  # the label of a video read without one; pretraining never looks at it


@dataclass
class PretrainingVideos:
    """The videos to pretrain on, and where each share came from (for the log and split.json)."""

    records: list[VideoRecord] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # "96 videos: the train split of data (split folders)"
    left_out: list[str] = field(default_factory=list)  # "val (12 videos)"

    def add(self, records: list[VideoRecord], source: str) -> None:
        seen = {r.path.resolve() for r in self.records}
        new = [r for r in records if r.path.resolve() not in seen]
        self.records += new
        self.sources.append(f"{len(new)} videos: {source}")


def find_videos(folder: str | Path) -> list[VideoRecord]:
    """Every video file under ``folder``, at any depth (hidden files and folders skipped), sorted, unlabelled.

    Each file is its own group. Symlinked folders are not followed (``Path.rglob``'s default).
    """
    folder = Path(folder)
    paths = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in VIDEO_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )
    return [VideoRecord(path, UNLABELLED, str(path)) for path in paths]


def _is_labelled_layout(root: Path) -> bool:
    """A folder whose layout names its splits or labels: its errors are reported, never read as a plain tree
    (which would pretrain on its test videos)."""
    return (
        any((root / split).is_dir() for split in SPLITS)
        or any((root / name).is_file() for name in HF_METADATA)
        or find_list_folder(root, is_ucf101_list) is not None
        or find_list_folder(root, is_hmdb51_list) is not None
    )


def is_plain_tree(root: Path, layout: LayoutOptions) -> bool:
    """Whether a folder is read as a plain tree of videos: one with videos at its top, or that no labelled
    layout fits (class folders are tried). Split folders, metadata.csv and split lists are always labelled."""
    if not root.is_dir() or _is_labelled_layout(root):
        return False
    if any(p.suffix.lower() in VIDEO_EXTENSIONS for p in root.iterdir()):
        return True
    try:
        load_dataset(root, layout)
    except DatasetError as err:
        logger.info("reading %s as a plain tree of videos: %s", root, err)
        return True
    return False


def pretraining_videos(
    data_dir: str | Path,
    layout: LayoutOptions,
    train_split: str = "train",
    extra_dirs: list[str] | tuple[str, ...] = (),
) -> PretrainingVideos:
    """The training split of a labelled dataset (or every video of a plain tree), plus every video of ``extra_dirs``.

    A folder is read as a labelled dataset (``load_dataset``, with ``layout``) when it is one: split folders,
    metadata.csv, UCF101/HMDB51 lists, or class folders. One with videos at its top, or that no layout fits, is
    a plain tree: all of its videos are used.

    Raises:
        DatasetError: a folder that does not exist, or no video at all.
    """
    found = PretrainingVideos()
    if is_plain_tree(Path(data_dir), layout):
        found.add(find_videos(data_dir), f"every video under {data_dir} (a plain tree)")
    else:
        dataset = load_dataset(data_dir, layout)  # its errors are the user's to fix
        records = dataset.records(train_split, "--train_split")
        found.add(records, f"the {train_split} split of {data_dir} ({dataset.layout})")
        found.left_out = [f"{name} ({len(r)} videos)" for name, r in dataset.splits.items() if name != train_split]
    for extra in extra_dirs:
        if not Path(extra).is_dir():
            raise DatasetError(f"--extra_unlabelled_dir {extra} is not a folder; pass a folder of videos")
        found.add(find_videos(extra), f"every video under {extra} (--extra_unlabelled_dir)")
    if not found.records:
        raise DatasetError(
            f"no videos to pretrain on in {data_dir}{' or ' + ', '.join(extra_dirs) if extra_dirs else ''} "
            f"(looked for {' '.join(VIDEO_EXTENSIONS)})"
        )
    return found


def split_folder_list(values: list[str] | str | None) -> list[str]:
    """``["a,b", "c"]`` or ``"a,b"`` -> ``["a", "b", "c"]``: a flag that takes several folders either way."""
    if not values:
        return []
    values = [values] if isinstance(values, str) else values
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
