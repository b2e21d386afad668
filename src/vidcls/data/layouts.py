"""Any supported dataset layout -> labelled records by split, with no group in two splits.

``load_dataset`` takes a folder, a ``.tar.gz`` of one, an ``hf://datasets/...`` archive, or a ``.csv``/``.jsonl``
manifest. A folder is read as the first of these that fits:

1. ``metadata.csv``/``metadata.jsonl`` (a Hugging Face ``datasets`` video folder): a manifest (manifest.py).
2. ``classInd.txt`` with ``trainlist0N.txt``/``testlist0N.txt``: UCF101's official lists (split_lists.py).
3. ``<class>_test_splitN.txt``: HMDB51's official lists.
4. ``train/``, ``val/``, ``test/`` folders of class folders: the guide's layout (discovery.py).
5. Class folders only: split by group with ``split_ratios``.

Archives are extracted within limits (archives.py), and the videos that manifests and split lists name must
lie in the dataset's folder (manifest.PathScope). Data without splits (5, or a manifest without a split
column) is split by group; the official lists have no validation split, so one is carved out of their
training split by group. Labels are the sorted class names of the training split (of all videos when no
split is given).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

from vidcls.data.archives import DEFAULT_MAX_ARCHIVE_MEMBERS, DEFAULT_MAX_EXTRACT_GB
from vidcls.data.discovery import SPLITS, UCF_GROUP, LabelMaps, VideoRecord, check_group_leakage, resolve_data_dir
from vidcls.data.discovery import scan_split as scan_classes
from vidcls.data.hub import fetch_from_hub
from vidcls.data.manifest import HF_METADATA, MANIFEST_SUFFIXES, ManifestRow, PathScope, read_manifest
from vidcls.data.split_lists import find_list_folder, is_hmdb51_list, is_ucf101_list, read_hmdb51, read_ucf101
from vidcls.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

DEFAULT_SPLIT_RATIOS = (0.7, 0.15, 0.15)
OFFICIAL_LISTS = ("UCF101 split lists", "HMDB51 split lists")

# Shared by `vidcls train` and `vidcls evaluate`: evaluation must be given the same values to see the same split.
LAYOUT_FLAG_HELP = {
    "split_ratios": "train,val,test shares for data without splits (class folders, a manifest without a split "
    "column), split by group; with UCF101/HMDB51 lists, val's share carves val out of train. "
    f"Unset: {','.join(map(str, DEFAULT_SPLIT_RATIOS))}.",
    "group_pattern": "Regex searched in each file name; its first group is the video's group (clips of one group "
    "never cross splits). Unset: UCF101's _gNN_ names, else one group per video.",
    "fold": "Which official UCF101/HMDB51 split list to use (1-3).",
    "split_seed": "Seed of the split by group; pass evaluate the same value as train.",
    "max_extract_gb": "Most a .tar.gz dataset may expand to, in GB; a larger one is refused before anything is "
    "written.",
    "max_archive_members": "Most files and folders a .tar.gz dataset may hold.",
    "allow_outside_paths": "Let a local manifest (.csv/.jsonl, metadata.csv) or split list name videos outside "
    "its folder (../ or absolute paths, symlinks); what an archive lists must always stay inside it.",
}


@dataclass(frozen=True)
class LayoutOptions:
    """How to split data that comes without splits, which official split list to read, and what may be read."""

    split_ratios: tuple[float, float, float] | None = None  # train, val, test; None: DEFAULT_SPLIT_RATIOS
    group_pattern: str | None = None  # regex whose first group is the group id
    fold: int = 1  # which official split list
    seed: int = 0
    max_extract_gb: float = DEFAULT_MAX_EXTRACT_GB  # archives: total size of the members
    max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS
    allow_outside_paths: bool = False  # local manifests and lists may name videos outside their folder

    def __post_init__(self):
        ratios = self.split_ratios
        if ratios is not None and (
            len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0 or abs(sum(ratios) - 1) > 1e-6
        ):
            raise ConfigError(
                f"--split_ratios {ratios}: expected train,val,test shares summing to 1, e.g. 0.7,0.15,0.15"
            )
        if self.group_pattern is not None:
            try:
                groups = re.compile(self.group_pattern).groups
            except re.error as err:
                raise ConfigError(f"--group_pattern {self.group_pattern!r} is not a regex ({err})") from err
            if not groups:
                raise ConfigError(f"--group_pattern {self.group_pattern!r} needs a (group), e.g. '_g(\\d+)_'")
        if self.fold < 1:
            raise ConfigError(f"--fold {self.fold}: split lists are numbered from 1")
        if not 0 < self.max_extract_gb < float("inf"):
            raise ConfigError(f"--max_extract_gb {self.max_extract_gb}: expected a size in GB above 0, e.g. 50")
        if self.max_archive_members < 1:
            raise ConfigError(f"--max_archive_members {self.max_archive_members}: expected a count of 1 or more")

    @classmethod
    def from_args(cls, args) -> LayoutOptions:
        """Options from parsed flags named like the layout flags (argparse's Namespace, train's DataArguments)."""
        return cls.from_flags(
            args.split_ratios,
            args.group_pattern,
            args.fold,
            args.split_seed,
            max_extract_gb=args.max_extract_gb,
            max_archive_members=args.max_archive_members,
            allow_outside_paths=args.allow_outside_paths,
        )

    @classmethod
    def from_flags(
        cls,
        split_ratios: str | None,
        group_pattern: str | None,
        fold: int,
        split_seed: int,
        *,
        max_extract_gb: float = DEFAULT_MAX_EXTRACT_GB,
        max_archive_members: int = DEFAULT_MAX_ARCHIVE_MEMBERS,
        allow_outside_paths: bool = False,
    ):
        """Options from the command-line flags; ``split_ratios`` is text like "0.7,0.15,0.15"."""
        ratios = None
        if split_ratios:
            try:
                ratios = tuple(float(share) for share in split_ratios.split(","))
            except ValueError as err:
                raise ConfigError(
                    f"--split_ratios {split_ratios!r}: expected three numbers, e.g. 0.7,0.15,0.15"
                ) from err
        limits = (max_extract_gb, max_archive_members, allow_outside_paths)
        return cls(ratios, group_pattern or None, fold, split_seed, *limits)


@dataclass(frozen=True)
class DatasetSplits:
    """Records by split name, the labels they are numbered with, and where and how they were read."""

    splits: dict[str, list[VideoRecord]]
    labels: LabelMaps
    source: str = ""
    layout: str = ""
    extracted_to: Path | None = None  # the folder read, when ``source`` is an archive

    def records(self, split: str, flag: str) -> list[VideoRecord]:
        """The records of ``split``; ``flag`` is the option that chose it, named in the error."""
        if split not in self.splits:
            raise DatasetError(
                f"{flag} {split}: no such split in {self.source} ({self.layout}; found: "
                f"{', '.join(self.splits) or 'none'}); pass one of those, or add videos (groups) to {split}"
            )
        return self.splits[split]


def load_dataset(
    source: str | Path,
    options: LayoutOptions = LayoutOptions(),
    labels: LabelMaps | None = None,
    *,
    allow_leakage: bool = False,
) -> DatasetSplits:
    """Detect the layout of ``source`` and return its splits (keys 'train', 'val', 'test', those present).

    Args:
        source: a dataset folder, a ``.tar.gz`` of one, ``hf://datasets/<owner>/<repo>/<archive>``, or a manifest.
        options: how to split data without splits, and which official list to read.
        labels: a trained model's labels (evaluation); classes it does not know are errors.
        allow_leakage: return groups found in two splits instead of refusing them (``vidcls check`` lists them).

    Raises:
        DatasetError: the data cannot be read, or a group of clips would be in two splits.
    """
    root, scope = _local_path(source, options)
    layout, rows = _read_layout(root, options, scope)
    rows = {split: [_with_group(row, options.group_pattern) for row in found] for split, found in rows.items()}
    labels = _label_maps(rows, labels, root)
    layout, rows = _fill_splits(layout, rows, options, root)
    splits = {
        split: [VideoRecord(r.path, labels.label2id[r.label], r.group, r.start, r.end) for r in found]
        for split, found in rows.items()
        if found
    }
    if not allow_leakage:
        check_group_leakage(splits)
    counts = ", ".join(f"{len(records)} {split}" for split, records in splits.items())
    logger.info("%s: %s, %d classes, %s videos", root, layout, len(labels.names), counts)
    extracted_to = root if scope.archive is not None and root != Path(source) else None
    return DatasetSplits(splits, labels, str(source), layout, extracted_to)


def _local_path(source: str | Path, options: LayoutOptions) -> tuple[Path, PathScope]:
    """The local folder or manifest to read, and where the videos it lists must lie.

    hf:// archives are downloaded and archives extracted, each once.
    """
    path = fetch_from_hub(str(source)) if str(source).startswith("hf://") else Path(source)
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return path, PathScope.of(path.parent, options.allow_outside_paths)
    limits = {"max_extract_gb": options.max_extract_gb, "max_archive_members": options.max_archive_members}
    root = resolve_data_dir(path, **limits)
    return root, PathScope.of(root, options.allow_outside_paths)


def _read_layout(
    root: Path, options: LayoutOptions, scope: PathScope
) -> tuple[str, dict[str | None, list[ManifestRow]]]:
    """(layout name, rows by split; the key None holds rows that need splitting)."""
    if root.is_file():
        return "manifest", read_manifest(root, scope)
    metadata = [root / name for name in HF_METADATA if (root / name).is_file()]
    if metadata:
        return "Hugging Face video folder", read_manifest(metadata[0], scope)
    if ucf_lists := find_list_folder(root, is_ucf101_list):
        return OFFICIAL_LISTS[0], read_ucf101(root, ucf_lists, options.fold, scope)
    if hmdb_lists := find_list_folder(root, is_hmdb51_list):
        return OFFICIAL_LISTS[1], read_hmdb51(root, hmdb_lists, options.fold, scope)
    if options.fold != 1:
        raise DatasetError(f"--fold {options.fold}: {root} has no UCF101/HMDB51 split lists; drop the flag")
    if any((root / split).is_dir() for split in SPLITS):
        return "split folders", _split_folders(root, scope)
    rows = _class_folders(root)
    if len({row.label for row in rows}) < 2:
        raise DatasetError(
            f"{root} holds a single class folder ({rows[0].label}); expected {root}/<Class>/<video> with two or "
            f"more classes, or {root}/{{{','.join(SPLITS)}}}/<Class>/<video>"
        )
    return "class folders", {None: rows}


def _split_folders(root: Path, scope: PathScope) -> dict[str | None, list[ManifestRow]]:
    """Every folder of class folders (or with a Hugging Face metadata file) next to train/val/test is a split."""
    rows = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        metadata = [folder / name for name in HF_METADATA if (folder / name).is_file()]
        if metadata:
            rows[folder.name] = [row for found in read_manifest(metadata[0], scope).values() for row in found]
        elif any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir()):
            rows[folder.name] = _class_folders(folder)
    return rows


def _class_folders(folder: Path) -> list[ManifestRow]:
    return [ManifestRow(path, name) for name, paths in scan_classes(folder).items() for path in paths]


def _with_group(row: ManifestRow, pattern: str | None) -> ManifestRow:
    """A row's own group, else ``pattern``'s first group, else UCF101's ``<Class>_gNN``, else the file itself."""
    if row.group:
        return row
    if pattern:
        match = re.search(pattern, row.path.name)
        if not match or not match.group(1):
            raise DatasetError(f"--group_pattern {pattern!r} finds no group in {row.path.name} ({row.path}); fix it")
        return replace(row, group=match.group(1))
    match = UCF_GROUP.search(row.path.stem)
    # UCF101 numbers groups within each class: g08 of one class and g08 of another are unrelated.
    return replace(row, group=f"{row.label}_g{int(match.group(1)):02d}" if match else str(row.path))


def _label_maps(rows: dict[str | None, list[ManifestRow]], labels: LabelMaps | None, root: Path) -> LabelMaps:
    """The given labels, else the sorted classes of train (of everything without splits); others are errors."""
    if labels is None:
        defining = rows.get("train") or [row for found in rows.values() for row in found]
        labels = LabelMaps.from_names({row.label for row in defining})
        problem = "that the training split lacks"
    else:
        problem = "that the model was not trained on"
    for split, found in rows.items():
        unknown = sorted({row.label for row in found} - set(labels.label2id))
        if unknown:
            where = f"{root} ({split})" if split else str(root)
            raise DatasetError(f"classes in {where} {problem}: {', '.join(unknown)} (known: {', '.join(labels.names)})")
    return labels


def _fill_splits(layout: str, rows: dict, options: LayoutOptions, root: Path) -> tuple[str, dict]:
    """Split rows given without a split by group; carve val out of the official lists' train split."""
    ratios = options.split_ratios or DEFAULT_SPLIT_RATIOS
    if None in rows:
        described = f"{layout} split by group {'/'.join(map(str, ratios))} (seed {options.seed})"
        return described, split_by_group(rows[None], ratios, options.seed)
    if layout in OFFICIAL_LISTS and "val" not in rows:
        val_share = ratios[1] / (ratios[0] + ratios[1])
        carved = split_by_group(rows["train"], (1 - val_share, val_share, 0.0), options.seed)
        described = f"{layout} fold {options.fold}, val carved out of train by group (seed {options.seed})"
        return described, {"train": carved["train"], "val": carved["val"], "test": rows["test"]}
    if options.split_ratios:
        raise DatasetError(
            f"--split_ratios: {root} already has splits ({', '.join(map(str, rows))}); drop the flag, "
            "or give data without splits"
        )
    return layout, rows


def split_by_group(rows: list[ManifestRow], ratios, seed: int) -> dict[str, list[ManifestRow]]:
    """Whole groups to train/val/test so that each class's clips follow ``ratios``, reproducibly for ``seed``.

    Per class, the groups are shuffled and laid end to end around a circle of circumference 1, each taking an
    arc proportional to its clips, from a random start; a group goes to the split whose share of the circle
    holds its arc's midpoint. A class of 20 equal groups with ratios (0.7, 0.15, 0.15) gets exactly 14/3/3;
    classes of 2 groups still send groups to val and test, about as often as the ratios say. A group whose
    clips span classes (a --group_pattern on the actor) is placed with its first class.
    """
    rng = random.Random(seed)
    members: dict[str, list[ManifestRow]] = {}
    for row in rows:
        members.setdefault(row.group, []).append(row)
    groups_of_class: dict[str, list[str]] = {}
    for group in sorted(members):
        groups_of_class.setdefault(min(r.label for r in members[group]), []).append(group)
    bounds = list(itertools.accumulate(ratios))  # (0.7, 0.15, 0.15) -> [0.7, 0.85, 1.0]
    split_of = {}
    for class_name in sorted(groups_of_class):
        groups = groups_of_class[class_name]
        rng.shuffle(groups)
        total, position = sum(len(members[g]) for g in groups), rng.random()
        for group in groups:
            midpoint = (position + len(members[group]) / 2 / total) % 1.0
            position += len(members[group]) / total
            split_of[group] = SPLITS[min(bisect.bisect_right(bounds, midpoint), len(SPLITS) - 1)]
    return {split: [row for row in rows if split_of[row.group] == split] for split in SPLITS}
