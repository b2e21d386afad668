"""Check a dataset before training: videos decode, no group or file is in two splits, classes are balanced.

Exit status: 0 when no errors were found, 1 when some were (or any warning, with --strict), 2 when the
dataset cannot be read at all (no train split, unknown classes, a bad flag).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from vidcls.cli.flags import command_parser, engine_jobs, split_namespace
from vidcls.config import ClipSpec
from vidcls.data.discovery import SPLITS, LabelMaps, VideoRecord
from vidcls.data.layouts import DatasetSplits, LayoutOptions, load_dataset
from vidcls.data.validate import ValidationReport, validate_dataset
from vidcls.settings import ClipFlags, EngineFlags, LayoutFlags

DEFAULTS = ClipSpec()


@dataclass
class CheckArguments:
    _argument_group_name = "check"

    num_workers: int = field(default=2, metadata={"help": "Decoding processes (0 or 1: decode inline)."})
    # A check should leave nothing behind unless asked: CI passes a path, people read the printed report.
    output: str | None = field(
        default=None, metadata={"help": "Also write the report as JSON to this path; nothing is written without it."}
    )
    strict: bool = field(default=False, metadata={"help": "Fail (exit 1) on warnings too."})


DEPRECATED_FLAGS = {"--json_report": "--output"}


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__, CheckArguments, ClipFlags, LayoutFlags, EngineFlags)
    parser.add_argument("data_dir", metavar="DATA", help="Dataset in any layout vidcls train reads.")
    return parser


def discover_splits(
    data_dir: str | Path, layout: LayoutOptions | None = None
) -> tuple[dict[str, list[VideoRecord]], LabelMaps]:
    """Records of every split in any layout vidcls train reads, with leaking groups kept for the report."""
    dataset = load_dataset(data_dir, layout or LayoutOptions(), allow_leakage=True)
    return ordered_splits(dataset), dataset.labels


def ordered_splits(dataset: DatasetSplits) -> dict[str, list[VideoRecord]]:
    ordered = sorted(dataset.splits, key=lambda s: SPLITS.index(s) if s in SPLITS else len(SPLITS))  # train first
    return {split: dataset.splits[split] for split in ordered}


def format_source(dataset: DatasetSplits) -> str:
    """Where the data was read from: an archive's line says where its contents went."""
    extracted = f", extracted to {dataset.extracted_to}" if dataset.extracted_to else ""
    return f"data: {dataset.source}{extracted} ({dataset.layout})"


def format_environment(env: dict[str, str]) -> str:
    lines = ["environment (paste this block into bug reports):"]
    lines += [f"  {name:<13}{version}" for name, version in env.items()]
    return "\n".join(lines)


def format_counts(counts: dict[str, dict[str, int]]) -> str:
    """Videos per class (rows) and split (columns), with totals."""
    splits = list(counts)
    names = list(next(iter(counts.values()), {}))
    width = max([len("class"), len("total"), *map(len, names)])
    rows = [f"{'class':<{width}}  " + "  ".join(f"{s:>6}" for s in splits)]
    rows += [f"{name:<{width}}  " + "  ".join(f"{counts[s][name]:>6}" for s in splits) for name in names]
    rows.append(f"{'total':<{width}}  " + "  ".join(f"{sum(counts[s].values()):>6}" for s in splits))
    return "\n".join(rows)


def format_report(report: ValidationReport, strict: bool = False) -> str:
    spec = report.spec
    lines = [
        format_environment(report.environment),
        "",
        f"clips: {spec.num_frames} frames every {spec.sample_rate} (span {spec.span}), {report.eval_clips} per video",
        format_counts(report.counts),
    ]
    for title, findings in (("errors", report.errors), ("warnings", report.warnings)):
        if findings:
            lines += ["", f"{title} ({len(findings)}):"] + [f"  - {finding}" for finding in findings]
    summary = ", ".join(
        f"{n} {word}{'' if n == 1 else 's'}"
        for n, word in ((len(report.files), "video"), (len(report.errors), "error"), (len(report.warnings), "warning"))
    )
    passed = report.ok and not (strict and report.warnings)
    lines += ["", f"{'OK' if passed else 'FAILED'}: {summary}" + (" (--strict)" if strict else "")]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    check, clips, layout, engine = split_namespace(args, CheckArguments, ClipFlags, LayoutFlags, EngineFlags)
    num_frames = DEFAULTS.num_frames if clips.num_frames is None else clips.num_frames
    spec = ClipSpec(num_frames=num_frames, sample_rate=clips.sample_rate)
    dataset = load_dataset(args.data_dir, layout.layout(), allow_leakage=True)
    report = validate_dataset(
        ordered_splits(dataset),
        dataset.labels,
        spec,
        num_workers=check.num_workers,
        eval_clips=clips.clips,
        run_jobs=engine_jobs(engine, "checking videos"),
    )
    print(format_source(dataset))
    print(format_report(report, strict=check.strict))
    passed = report.ok and not (check.strict and report.warnings)
    if check.output:
        path = Path(check.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"passed": passed, "strict": check.strict, **report.to_dict()}, indent=2) + "\n")
        print(f"report: {path}")
    return 0 if passed else 1
