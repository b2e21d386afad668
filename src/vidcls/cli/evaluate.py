"""Evaluate a trained model on a split: accuracy per video and per clip, written to a JSON report."""

from __future__ import annotations

import argparse

from vidcls.engine.evaluate import evaluate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="Output folder of vidcls train.")
    parser.add_argument("--data_dir", required=True, help="Dataset folder (or .tar.gz) in the guide's layout.")
    parser.add_argument("--split", default="test", help="Split folder to evaluate.")
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
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        output_file=args.output_file,
    )
    print(format_report(report))
    return 0
