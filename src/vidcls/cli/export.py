"""Export a trained model to ONNX, checked and verified against PyTorch on real frames; optionally int8 too.

Writes MODEL_DIR/onnx/ (or --output_dir): model.onnx (normalised float pixels (B, T, C, H, W) -> logits (B, K)),
config.json (the label map), vidcls.json (clip settings) and export_report.json (opset, the largest logit
difference to PyTorch and the frames it was measured on). ``vidcls predict --backend onnx`` runs it with
onnxruntime. ``--quantize`` (or ``--quantize dynamic``) adds model.int8.onnx, int8 weights quantising activations
per call; ``--quantize static --eval_data data/test`` fixes the activations' int8 scales from clips of those videos
(``--calibration_clips`` of them) and runs faster. With ``--eval_data`` the report gives the int8 model's per-video
accuracy change against PyTorch on that split. Needs the extra: pip install 'vidcls[onnx]'.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vidcls.cli.flags import command_parser, split_namespace
from vidcls.errors import ConfigError
from vidcls.export import DEFAULT_CALIBRATION_CLIPS, DEFAULT_OPSET, INT8_MODES
from vidcls.models.onnx import EXPORT_SUBDIR, INT8_FILE, ONNX_FILE

# --quantize was a boolean: its old spellings still parse.
OLD_SPELLINGS = {"true": "dynamic", "yes": "dynamic", "1": "dynamic", "false": None, "no": None, "0": None}


def quantize_mode(value: str | bool | None) -> str | None:
    """The mode --quantize asks for: dynamic, static, or None (no int8 model); True/"true" mean dynamic."""
    if value is None or isinstance(value, bool):
        return "dynamic" if value else None
    if value.lower() in OLD_SPELLINGS:
        return OLD_SPELLINGS[value.lower()]
    if value not in INT8_MODES:
        raise ConfigError(f"--quantize {value}: pass one of {', '.join(INT8_MODES)} (a bare --quantize: dynamic)")
    return value


@dataclass
class ExportArguments:
    _argument_group_name = "export"

    model_dir: str = field(metadata={"help": "Output folder of vidcls train."})
    format: Literal["onnx"] = field(default="onnx", metadata={"help": "Export format."})
    output_dir: str | None = field(default=None, metadata={"help": f"Export folder; None: MODEL_DIR/{EXPORT_SUBDIR}."})
    opset: int = field(default=DEFAULT_OPSET, metadata={"help": "ONNX opset to write (18 or newer)."})
    dynamic_batch: bool = field(default=False, metadata={"help": "Any batch size; otherwise batches of 1."})
    verify_video: str | None = field(
        default=None, metadata={"help": "Video whose clips verify the export; None: a generated one."}
    )
    quantize: str | None = field(
        default=None,
        metadata={
            "help": f"Also write {INT8_FILE}: dynamic (a bare --quantize) or static (calibrated on --eval_data).",
            "nargs": "?",
            "const": "dynamic",
            "metavar": "{dynamic,static}",
        },
    )
    eval_data: str | None = field(
        default=None,
        metadata={
            "help": "With --quantize: a split folder DIR/<Class>/<video> to measure accuracy on (and calibrate)."
        },
    )
    calibration_data: str | None = field(
        default=None, metadata={"help": "With --quantize static: a split folder to calibrate on; None: --eval_data."}
    )
    calibration_clips: int = field(
        default=DEFAULT_CALIBRATION_CLIPS, metadata={"help": "With --quantize static: clips to calibrate on, at most."}
    )
    num_workers: int = field(default=2, metadata={"help": "Decoding processes for --eval_data."})

    def __post_init__(self):
        self.quantize = quantize_mode(self.quantize)
        if self.eval_data and not self.quantize:
            raise ConfigError("--eval_data measures the int8 model's accuracy change: add --quantize")
        if self.quantize == "static" and not (self.calibration_data or self.eval_data):
            raise ConfigError(
                "--quantize static calibrates on clips of your videos: pass --eval_data DIR (a split folder "
                "DIR/<Class>/<video>, e.g. data/test) or --calibration_data DIR"
            )
        if self.calibration_data and self.quantize != "static":
            raise ConfigError("--calibration_data calibrates static int8: add --quantize static")
        if self.calibration_clips < 1:
            raise ConfigError(f"--calibration_clips must be >= 1, got {self.calibration_clips}")

    @property
    def calibration(self) -> tuple[str, str | None]:
        """The flag and folder static int8 calibrates on: --calibration_data, else --eval_data."""
        if self.calibration_data:
            return "--calibration_data", self.calibration_data
        return "--eval_data", self.eval_data
        if self.num_workers < 0:
            raise ConfigError(f"--num_workers must be >= 0, got {self.num_workers}")


def build_parser() -> argparse.ArgumentParser:
    return command_parser(__doc__, ExportArguments)


def run(args: argparse.Namespace) -> int:
    from vidcls.export.calibration import interleaved_videos
    from vidcls.export.onnx_export import export_model, write_report  # torch: loaded only to run
    from vidcls.export.quantize import int8_accuracy, quantize_int8

    (args,) = split_namespace(args, ExportArguments)
    flag, calibration_data = args.calibration
    if args.quantize == "static":
        interleaved_videos(Path(calibration_data), flag)  # a folder without videos fails before the export's minutes
    output_dir = Path(args.output_dir) if args.output_dir else Path(args.model_dir) / EXPORT_SUBDIR
    report = export_model(
        args.model_dir,
        output_dir,
        opset=args.opset,
        dynamic_batch=args.dynamic_batch,
        verify_video=args.verify_video,
    )
    batch = "dynamic batch" if report["dynamic_batch"] else "batch 1"
    print(f"wrote {output_dir / ONNX_FILE} ({report['model_type']}, opset {report['opset']}, {batch})")
    print(
        f"max |logit difference| to PyTorch: {report['max_abs_diff']:.2e} (<= {report['tolerance']:g}) on "
        f"{report['clips']} clips, {report['frames']} frames of {report['verify_video']}"
    )
    if args.quantize:
        path, details = quantize_int8(
            output_dir,
            args.quantize,
            calibration_data=calibration_data,
            clips=args.calibration_clips,
            flag=flag,
        )
        report["int8"] = {"file": INT8_FILE, "mb": round(path.stat().st_size / 2**20, 2), **details}
        calibrated = f", calibrated on {details['calibration_clips']} clips" if args.quantize == "static" else ""
        print(f"wrote {path} ({args.quantize} int8, {report['int8']['mb']} MB{calibrated})")
        if args.eval_data:
            report["int8"] |= int8_accuracy(args.model_dir, output_dir, args.eval_data, num_workers=args.num_workers)
            result = report["int8"]
            print(
                f"per-video accuracy on {result['videos']} videos of {args.eval_data}: PyTorch "
                f"{result['torch_accuracy']:.4f}, int8 {result['int8_accuracy']:.4f} "
                f"(change {result['accuracy_change']:+.4f}; same top-1 label on {result['top1_agreement']:.1%})"
            )
        else:
            print("pass --eval_data DIR (a split folder, e.g. data/test) to measure the int8 accuracy change")
        write_report(output_dir, report)
    return 0
