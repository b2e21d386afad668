"""Evaluate a trained model on a split: accuracy per video and per clip, written to a JSON report."""

from __future__ import annotations

import argparse

from vidcls.data.layouts import LAYOUT_FLAG_HELP, LayoutOptions
from vidcls.engine.evaluate import evaluate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="Output folder of vidcls train.")
    parser.add_argument("--data_dir", required=True, help="Dataset in any layout vidcls train reads.")
    parser.add_argument("--split", default="test", help="Split to evaluate: train, val or test (or a folder's name).")
    # The layout flags of vidcls train: pass the same values, so a split made by group is made the same way.
    parser.add_argument("--split_ratios", default=None, help=LAYOUT_FLAG_HELP["split_ratios"])
    parser.add_argument("--group_pattern", default=None, help=LAYOUT_FLAG_HELP["group_pattern"])
    parser.add_argument("--fold", type=int, default=1, help=LAYOUT_FLAG_HELP["fold"])
    parser.add_argument("--split_seed", type=int, default=0, help=LAYOUT_FLAG_HELP["split_seed"])
    parser.add_argument("--batch_size", type=int, default=8, help="Clips per model call.")
    parser.add_argument("--num_workers", type=int, default=2, help="Decoding processes.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--output_file", default=None, help="JSON report path (default: MODEL_DIR/eval_SPLIT.json).")
    return parser


def format_report(report: dict) -> str:
    lines = [
        f"{report['split']}: {report['num_videos']} videos, {report['num_clips']} clips",
        f"  per video: top-1 {report['accuracy']:.4f}  top-5 {report['top5_accuracy']:.4f}",
        f"  per clip:  top-1 {report['clip_accuracy']:.4f}  top-5 {report['clip_top5_accuracy']:.4f}",
    ]
    if report["skipped_videos"]:
        lines.append(f"  not scored: {len(report['skipped_videos'])} videos (listed in the report)")
    lines.append(f"report: {report['output_file']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = evaluate(
        args.model_dir,
        args.data_dir,
        args.split,
        layout=LayoutOptions.from_flags(args.split_ratios, args.group_pattern, args.fold, args.split_seed),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        output_file=args.output_file,
    )
    print(format_report(report))
    return 0
