"""Evaluate a trained model on a split: accuracy per video and per clip, class metrics, written to a JSON report."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vidcls.cli.flags import command_parser, split_namespace
from vidcls.errors import ConfigError
from vidcls.settings import DeviceFlags, LayoutFlags


def parse_views(text: str) -> tuple[int, int]:
    """``"5x3"`` -> (5, 3): evenly spaced clips x spatial crops (1 or 3) per video."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match[1]) < 1 or int(match[2]) not in (1, 3):
        raise ConfigError(
            f"--views {text!r} is not CLIPSxCROPS with CLIPS >= 1 and CROPS 1 or 3 (e.g. 5x3, VideoMAE's test, or 4x1)"
        )
    return int(match[1]), int(match[2])


@dataclass
class EvaluateArguments:
    _argument_group_name = "evaluate"

    model_dir: str = field(metadata={"help": "Output folder of vidcls train."})
    data_dir: str = field(metadata={"help": "Dataset in any layout vidcls train reads."})
    eval_split: str = field(
        default="test", metadata={"help": "Split to evaluate: train, val or test (or a folder's name)."}
    )
    views: str | None = field(
        default=None,
        metadata={
            "help": "Views per video as CLIPSxCROPS: 5x3 is VideoMAE's test (5 clips x 3 crops); default: the "
            "model's eval_clips x num_crops."
        },
    )
    eval_clips: int | None = field(default=None, metadata={"help": "Evenly spaced clips per video; overrides --views."})
    num_crops: int | None = field(default=None, metadata={"help": "Spatial crops per clip, 1 or 3; overrides --views."})
    allow_train_overlap: bool = field(
        default=False,
        metadata={"help": "Score the split even when it holds videos the model was trained on (inflated scores)."},
    )
    output: str | None = field(
        default=None, metadata={"help": "JSON report path (default: MODEL_DIR/eval_SPLIT.json)."}
    )

    def __post_init__(self):
        clips, crops = parse_views(self.views) if self.views else (None, None)
        self.eval_clips = clips if self.eval_clips is None else self.eval_clips
        self.num_crops = crops if self.num_crops is None else self.num_crops
        if self.num_crops not in (None, 1, 3):
            raise ConfigError(f"--num_crops {self.num_crops}: choose 1 or 3")


# Old names, still read (with a warning that gives the new one).
SPLIT_FLAGS = ("split_ratios", "group_pattern", "fold", "split_seed")
DEPRECATED_FLAGS = {"--split": "--eval_split", "--output_file": "--output"}


def build_parser() -> argparse.ArgumentParser:
    return command_parser(__doc__, EvaluateArguments, DeviceFlags, LayoutFlags)


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
    from vidcls.engine.evaluate import evaluate  # torch: loaded only to run, not for --help

    options, device, layout = split_namespace(args, EvaluateArguments, DeviceFlags, LayoutFlags)
    # Split options left unset are the model's own (split.json), so the test split is the one train held out.
    defaults = LayoutFlags()
    split_given = any(getattr(layout, name) != getattr(defaults, name) for name in SPLIT_FLAGS)
    report = evaluate(
        options.model_dir,
        options.data_dir,
        options.eval_split,
        layout=layout.layout(),
        batch_size=device.batch_size,
        num_workers=device.num_workers,
        device=device.device,
        output_file=options.output,
        eval_clips=options.eval_clips,
        num_crops=options.num_crops,
        use_saved_split=not split_given,
        allow_train_overlap=options.allow_train_overlap,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process has the report; one prints it
        print(format_report(report))
    return 0
