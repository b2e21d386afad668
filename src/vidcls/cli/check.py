"""Check a dataset before training: videos decode, no group or file is in two splits, classes are balanced.

Exit status: 0 when no errors were found, 1 when some were (or any warning, with --strict), 2 when the
dataset cannot be read at all (no train split, unknown classes, a bad flag).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidcls.cli.layout_flags import add_layout_arguments, layout_options
from vidcls.config import ClipSpec
from vidcls.data.discovery import SPLITS, LabelMaps, VideoRecord
from vidcls.data.layouts import DatasetSplits, LayoutOptions, load_dataset
from vidcls.data.validate import ValidationReport, validate_dataset

DEFAULTS = ClipSpec()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("data_dir", metavar="DATA", help="Dataset in any layout vidcls train reads.")
    add_layout_arguments(parser)
    parser.add_argument("--num_frames", type=int, default=DEFAULTS.num_frames, help="Frames per clip.")
    parser.add_argument("--sample_rate", type=int, default=DEFAULTS.sample_rate, help="Take every n-th frame.")
    parser.add_argument(
        "--eval_clips", type=int, default=DEFAULTS.eval_clips, help="Evenly spaced clips decoded per video."
    )
    parser.add_argument("--num_workers", type=int, default=2, help="Decoding processes (0 or 1: decode inline).")
    # A check should leave nothing behind unless asked: CI passes a path, people read the printed report.
    parser.add_argument(
        "--json_report", default=None, help="Also write the report as JSON to this path; nothing is written without it."
    )
    parser.add_argument("--strict", action="store_true", help="Fail (exit 1) on warnings too.")
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
        f"clips: {spec.num_frames} frames every {spec.sample_rate} (span {spec.span}), {spec.eval_clips} per video",
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
    spec = ClipSpec(num_frames=args.num_frames, sample_rate=args.sample_rate, eval_clips=args.eval_clips)
    dataset = load_dataset(args.data_dir, layout_options(args), allow_leakage=True)
    report = validate_dataset(ordered_splits(dataset), dataset.labels, spec, num_workers=args.num_workers)
    print(format_source(dataset))
    print(format_report(report, strict=args.strict))
    passed = report.ok and not (args.strict and report.warnings)
    if args.json_report:
        path = Path(args.json_report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"passed": passed, "strict": args.strict, **report.to_dict()}, indent=2) + "\n")
        print(f"report: {path}")
    return 0 if passed else 1
