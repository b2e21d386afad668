"""Evaluate a trained model on a split: accuracy per video and per clip, class metrics, written to a JSON report."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from vidcls.cli.layout_flags import add_layout_arguments, layout_options
from vidcls.engine.evaluate import evaluate


def parse_views(text: str) -> tuple[int, int]:
    """``"5x3"`` -> (5, 3): evenly spaced clips x spatial crops (1 or 3) per video."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match[1]) < 1 or int(match[2]) not in (1, 3):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not CLIPSxCROPS with CLIPS >= 1 and CROPS 1 or 3 (e.g. 5x3, VideoMAE's test, or 4x1)"
        )
    return int(match[1]), int(match[2])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="Output folder of vidcls train.")
    parser.add_argument("--data_dir", required=True, help="Dataset in any layout vidcls train reads.")
    parser.add_argument("--split", default="test", help="Split to evaluate: train, val or test (or a folder's name).")
    add_layout_arguments(parser)
    parser.add_argument(
        "--views",
        type=parse_views,
        default=None,
        help="Views per video as CLIPSxCROPS: 5x3 is VideoMAE's test (5 clips x 3 crops); default: the model's "
        "eval_clips x num_crops.",
    )
    parser.add_argument(
        "--eval_clips", type=int, default=None, help="Evenly spaced clips per video; overrides --views."
    )
    parser.add_argument(
        "--num_crops", type=int, default=None, choices=(1, 3), help="Spatial crops per clip; overrides --views."
    )
    parser.add_argument("--batch_size", type=int, default=8, help="Views (clips x crops) per model call.")
    parser.add_argument("--num_workers", type=int, default=2, help="Decoding processes.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--output_file", default=None, help="JSON report path (default: MODEL_DIR/eval_SPLIT.json).")
    return parser


def format_report(report: dict) -> str:
    def accuracies(prefix: str) -> str:  # top-5 only exists with more than 5 classes
        top5 = report.get(f"{prefix}top5_accuracy")
        return f"top-1 {report[f'{prefix}accuracy']:.4f}" + (f"  top-5 {top5:.4f}" if top5 is not None else "")

    lines = [
        f"{report['split']}: {report['num_videos']} videos, {report['num_clips']} clips",
        f"  per video: {accuracies('')}",
        f"  per clip:  {accuracies('clip_')}",
    ]
    if "mean_class_accuracy" in report:
        lines.append(f"  mean per-class accuracy {report['mean_class_accuracy']:.4f}  (views {report['views']})")
    confusions = report.get("top_confusions", [])[:3]
    if confusions:
        lines.append(
            "  top confusions: " + ", ".join(f"{c['true']} -> {c['predicted']} ({c['count']})" for c in confusions)
        )
    worst = report.get("worst_videos", [])[:3]
    if worst:
        lines.append("  worst classified: " + ", ".join(
            f"{Path(w['file']).name} ({w['true_label']} -> {w['predicted_label']}, {w['score']:.2f})" for w in worst
        ))  # fmt: skip
    if report["skipped_videos"]:
        lines.append(f"  not scored: {len(report['skipped_videos'])} videos (listed in the report)")
    lines.append(f"report: {report['output_file']}")
    if "predictions_csv" in report:
        lines.append(f"per-video predictions: {report['predictions_csv']}")
    if "confusion_matrix_png" in report:
        lines.append(f"confusion matrix: {report['confusion_matrix_png']}, {report['confusion_matrix_csv']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    clips, crops = args.views or (None, None)
    report = evaluate(
        args.model_dir,
        args.data_dir,
        args.split,
        layout=layout_options(args),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        output_file=args.output_file,
        eval_clips=clips if args.eval_clips is None else args.eval_clips,
        num_crops=crops if args.num_crops is None else args.num_crops,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process has the report; one prints it
        print(format_report(report))
    return 0
