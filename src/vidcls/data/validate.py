"""Dataset validation before training: every video decodes where clips are taken, no group or file is in two
splits, classes are balanced and frame rates agree.

Records come in already discovered (``{split: [VideoRecord]}``), so any layout can be checked. Each file is
hashed and decoded in a worker process; the findings are plain sentences in ``errors`` (the dataset is not
usable as it is) and ``warnings`` (usable, but results may mislead).
"""

from __future__ import annotations

import platform
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from importlib import metadata
from itertools import repeat
from pathlib import Path

from tqdm.auto import tqdm

from vidcls.config import ClipSpec, EvalViews
from vidcls.data import decode
from vidcls.data.clips import ClipReader
from vidcls.data.decode import check_regular_file, probe, read_frames
from vidcls.data.discovery import LabelMaps, VideoRecord, file_digest, find_group_leaks
from vidcls.errors import DecodeError

PREVIEW_SIDE = 64  # decode clips this small: the check needs frames to decode, not to look good
IMBALANCE_RATIO = 3.0  # largest / smallest class in a split above this is worth a warning
FPS_RANGE = (10.0, 120.0)  # outside this a clip's span in seconds is far from what models were trained on
SHOWN = 5  # offenders listed in one warning before "and N more"
PACKAGES = ("vidcls", "torch", "torchvision", "transformers", "av", "numpy")


@dataclass
class FileCheck:
    """What checking one video found. ``error`` is None when it hashed, probed and decoded its clips."""

    split: str
    label: str
    path: str
    size: int = 0
    digest: str | None = None  # blake2b of the content, to find copies under other names
    num_frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None


@dataclass
class ValidationReport:
    """Everything ``validate_dataset`` found; ``to_dict()`` is the JSON report."""

    spec: ClipSpec
    eval_clips: int
    counts: dict[str, dict[str, int]]  # split -> class -> videos
    files: list[FileCheck]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": self.counts,
            "clip_spec": {
                "num_frames": self.spec.num_frames,
                "sample_rate": self.spec.sample_rate,
                "eval_clips": self.eval_clips,
                "span": self.spec.span,
            },
            "environment": self.environment,
            "files": [asdict(f) for f in self.files],
        }


def environment() -> dict[str, str]:
    """Versions of Python, the libraries vidcls runs on and the FFmpeg build that decodes, for bug reports.

    Versions come from package metadata, so torch and transformers are not imported just to be named.
    """
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = "not installed"
    # decode.py is the one module that imports av; read the FFmpeg build it links through it.
    env["ffmpeg"] = str(getattr(decode.av, "ffmpeg_version_info", "unknown"))
    return env


def _shorten(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def check_file(split: str, label: str, path: Path, reader: ClipReader) -> FileCheck:
    """Hash one video, probe it and decode the frames of its evaluation clips (small, to stay cheap).

    This decides what is an error for ``vidcls check`` and ``vidcls train --strict`` alike.
    """
    check = FileCheck(split, label, str(path))
    try:
        check_regular_file(path)  # hashing a FIFO would wait for a writer forever
        check.size, check.digest = file_digest(path)
    except DecodeError as err:
        check.error = str(err)
        return check
    except OSError as err:
        check.error = f"{path}: cannot read the file ({err.strerror or err})"
        return check
    if check.size == 0:
        check.error = f"{path}: empty file (0 bytes)"
        return check
    try:
        info = probe(path)
        check.num_frames, check.fps, check.width, check.height = info.num_frames, info.fps, info.width, info.height
        for clip in reader.clip_indices(info):
            read_frames(path, clip, info, size=PREVIEW_SIDE)
    except DecodeError as err:
        check.error = str(err)  # starts with the path and says what failed
    return check


def _check_files(
    splits: dict[str, list[VideoRecord]],
    labels: LabelMaps,
    reader: ClipReader,
    num_workers: int,
    progress: bool,
    run_jobs: Callable | None = None,
) -> list[FileCheck]:
    """``check_file`` over every record, in worker processes (or by ``run_jobs``), in the order given."""
    jobs = [(split, record) for split, records in splits.items() for record in records]
    split_names = [split for split, _ in jobs]
    label_names = [labels.id2label[record.label] for _, record in jobs]
    paths = [record.path for _, record in jobs]
    if run_jobs is not None:
        return list(run_jobs(check_file, list(zip(split_names, label_names, paths, repeat(reader)))))
    # One worker process gains nothing over decoding here, and inline runs are easier to debug.
    parallel = num_workers > 1 and len(jobs) > 1
    checks = []
    with (
        tqdm(total=len(jobs), desc="checking videos", unit="video", disable=not progress) as bar,
        ProcessPoolExecutor(min(num_workers, len(jobs))) if parallel else nullcontext() as pool,
    ):
        if pool:
            results = pool.map(check_file, split_names, label_names, paths, repeat(reader), chunksize=4)
        else:
            results = map(check_file, split_names, label_names, paths, repeat(reader))
        for check in results:
            checks.append(check)
            bar.update()
    return checks


def _leak_errors(splits: dict[str, list[VideoRecord]]) -> list[str]:
    errors = []
    for group, names in find_group_leaks(splits).items():
        paths = [f"{split}: {r.path}" for split in names for r in splits[split] if r.group == group]
        errors.append(
            f"group {group} is in {len(names)} splits ({', '.join(names)}), so test scores would measure memory: "
            f"{'; '.join(paths)}; move all its clips into one split"
        )
    return errors


def _duplicate_findings(
    files: list[FileCheck], segments: list[tuple], allow_across_splits: bool = False
) -> tuple[list[str], list[str]]:
    """Identical content in two splits is an error (the test set leaks); in one split, a warning.

    ``segments`` holds each file's (start, end): two different segments of one file are not copies (their groups
    decide whether they may be in two splits), as in ``discovery.find_duplicate_files``, which train uses.
    """
    by_digest: dict[tuple, list[FileCheck]] = defaultdict(list)
    for check, segment in zip(files, segments, strict=True):
        if check.digest and check.size:
            by_digest[(check.digest, *segment)].append(check)
    errors, warnings = [], []
    for copies in by_digest.values():
        if len(copies) < 2:
            continue
        listed = "; ".join(f"{c.split}/{c.label}: {c.path}" for c in copies)
        if len({c.split for c in copies}) > 1:
            found = f"the same file is in more than one split: {listed}; keep one copy"
            (warnings if allow_across_splits else errors).append(found)
        else:
            warnings.append(f"duplicate files in {copies[0].split} (they count twice): {listed}")
    return errors, warnings


def _class_warnings(counts: dict[str, dict[str, int]]) -> list[str]:
    """Empty splits, classes missing from a split and imbalance within a split."""
    warnings = []
    for split, per_class in counts.items():
        present = {name: n for name, n in per_class.items() if n}
        missing = sorted(set(per_class) - set(present))
        if not present:
            warnings.append(f"{split} is empty")
            continue
        if missing:
            warnings.append(f"{split} has no videos of: {_shorten(missing)}")
        largest, smallest = max(present, key=present.get), min(present, key=present.get)
        if present[largest] > IMBALANCE_RATIO * present[smallest]:
            warnings.append(
                f"{split} is imbalanced: {largest} has {present[largest]} videos, {smallest} only "
                f"{present[smallest]} (more than {IMBALANCE_RATIO:g}x); consider class weights or more videos"
            )
    return warnings


def _frame_warnings(files: list[FileCheck], spec: ClipSpec) -> list[str]:
    """Videos shorter than one clip, frame rates outside ``FPS_RANGE`` and frame rates that differ."""
    decoded = [c for c in files if c.error is None and c.fps]
    warnings = []
    short = [f"{c.path} ({c.num_frames} frames)" for c in decoded if c.num_frames < spec.span]
    if short:
        warnings.append(
            f"{len(short)} videos are shorter than one clip ({spec.span} frames = {spec.num_frames} x "
            f"{spec.sample_rate}), so their clips spread over the whole video: {_shorten(short)}"
        )
    low, high = FPS_RANGE
    odd = [f"{c.path} ({c.fps:g} fps)" for c in decoded if not low <= c.fps <= high]
    if odd:
        warnings.append(f"{len(odd)} videos have frame rates outside {low:g}-{high:g} fps: {_shorten(odd)}")
    rates = Counter(round(c.fps, 2) for c in decoded)
    if len(rates) > 1:
        listed = [f"{n} at {fps:g} fps" for fps, n in rates.most_common()]
        common = rates.most_common(1)[0][0]
        warnings.append(
            f"mixed frame rates: {_shorten(listed)}; a clip spans {spec.span} frames, "
            f"{spec.span / common:.2f} s at {common:g} fps but a different time at the others"
        )
    return warnings


def validate_dataset(
    splits: dict[str, list[VideoRecord]],
    labels: LabelMaps,
    spec: ClipSpec,
    num_workers: int = 2,
    progress: bool = True,
    allow_duplicates: bool = False,
    eval_clips: int = EvalViews.clips,
    run_jobs: Callable | None = None,
) -> ValidationReport:
    """Check every video of every split and the splits against each other.

    Args:
        splits: split name -> its records, e.g. from ``discovery.load_split``.
        labels: the class names the records' labels index.
        spec: the clip specification; the ``eval_clips`` clips a video is scored from must decode.
        num_workers: decoding processes; 0 or 1 decodes in this process.
        progress: show a progress bar over files.
        allow_duplicates: report the same file in two splits as a warning, not an error (train's
            ``--allow_duplicates``).
        run_jobs: runs ``fn(*job)`` for each of a list of jobs elsewhere and yields the results in order
            (``engine.ray_engine.ray_map`` for ``--engine ray``); None: ``num_workers`` local processes.

    Returns:
        The report: errors make ``ok`` false; warnings don't.
    """
    counts = {split: dict.fromkeys(labels.names, 0) for split in splits}
    for split, records in splits.items():
        for record in records:
            counts[split][labels.id2label[record.label]] += 1
    files = _check_files(splits, labels, ClipReader(spec, EvalViews(eval_clips)), num_workers, progress, run_jobs)
    segments = [(record.start, record.end) for records in splits.values() for record in records]  # as files
    duplicate_errors, duplicate_warnings = _duplicate_findings(files, segments, allow_duplicates)
    return ValidationReport(
        spec=spec,
        eval_clips=eval_clips,
        counts=counts,
        files=files,
        errors=[c.error for c in files if c.error] + _leak_errors(splits) + duplicate_errors,
        warnings=_class_warnings(counts) + _frame_warnings(files, spec) + duplicate_warnings,
        environment=environment(),
    )
