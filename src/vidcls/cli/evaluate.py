"""Evaluate a trained model on a split: accuracy per video and per clip, class metrics, written to a JSON report."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from vidcls.cli.flags import command_parser, ray_engine, split_namespace
from vidcls.settings import ActorFlags, DeviceFlags, EngineFlags, LayoutFlags, ViewFlags


@dataclass
class EvaluateArguments:
    _argument_group_name = "evaluate"

    model_dir: str = field(metadata={"help": "Output folder of vidcls train."})
    data_dir: str = field(metadata={"help": "Dataset in any layout vidcls train reads."})
    eval_split: str = field(
        default="test", metadata={"help": "Split to evaluate: train, val or test (or a folder's name)."}
    )
    allow_train_overlap: bool = field(
        default=False,
        metadata={"help": "Score the split even when it holds videos the model was trained on (inflated scores)."},
    )
    output: str | None = field(
        default=None, metadata={"help": "JSON report path (default: MODEL_DIR/eval_SPLIT.json)."}
    )


# Old names, still read (with a warning that gives the new one).
SPLIT_FLAGS = ("split_ratios", "group_pattern", "fold", "split_seed")
DEPRECATED_FLAGS = {"--split": "--eval_split", "--output_file": "--output"}


def build_parser() -> argparse.ArgumentParser:
    return command_parser(__doc__, EvaluateArguments, ViewFlags, DeviceFlags, LayoutFlags, EngineFlags, ActorFlags)


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
    from vidcls.engine.distributed import rank_and_world
    from vidcls.engine.evaluate import evaluate  # torch: loaded only to run, not for --help

    options, views, device, layout, engine, actors = split_namespace(
        args, EvaluateArguments, ViewFlags, DeviceFlags, LayoutFlags, EngineFlags, ActorFlags
    )
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
        views=views.eval_views(),
        use_saved_split=not split_given,
        allow_train_overlap=options.allow_train_overlap,
        ray=ray_engine(engine, actors, options.model_dir, device.device),
    )
    if rank_and_world()[0] == 0:  # under torchrun every process has the report; one prints it
        print(format_report(report))
    return 0
