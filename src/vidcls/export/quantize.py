"""int8 quantisation of an exported graph (dynamic, or static calibrated on the user's videos), and what it costs
in accuracy on a labelled split.

Dynamic quantisation stores MatMul/Gemm weights as int8 and quantises activations on the fly, per call: no
calibration needed, attention stays float. Static quantisation fixes the activations' scales beforehand from clips
of the user's videos and writes a QDQ graph (QuantizeLinear/DequantizeLinear pairs around each quantised op,
attention included) that onnxruntime fuses into int8 kernels. On VideoMAE-base both run about 2x fp32 on an
AVX-512 VNNI CPU; static is a few percent faster, with half the logit error (BENCHMARKS.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vidcls.config import ClipSpec
from vidcls.data.discovery import VideoRecord, scan_split
from vidcls.engine.evaluate import evaluate_records
from vidcls.engine.predict import Predictor
from vidcls.errors import ConfigError
from vidcls.export import DEFAULT_CALIBRATION_CLIPS, INT8_MODES, quiet_info
from vidcls.export.calibration import ClipFeed, calibration_clips
from vidcls.models.onnx import INT8_FILE, ONNX_FILE, reason, require


def quantize_int8(
    export_dir: str | Path,
    mode: str = "dynamic",
    *,
    calibration_data: str | Path | None = None,
    clips: int = DEFAULT_CALIBRATION_CLIPS,
    flag: str = "--eval_data",
) -> tuple[Path, dict]:
    """Write ``model.int8.onnx`` next to ``model.onnx`` in an export folder; return its path and what was done.

    ``mode`` "static" calibrates on up to ``clips`` clips of ``calibration_data/<Class>/<video>``
    (errors about that folder name ``flag``).
    """
    if mode not in INT8_MODES:
        raise ConfigError(f"--quantize {mode}: pass one of {', '.join(INT8_MODES)}")
    require("onnxruntime")
    onnx = require("onnx")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    export_dir = Path(export_dir)
    source, target = export_dir / ONNX_FILE, export_dir / INT8_FILE
    details = {"mode": mode}
    if mode == "static":
        if calibration_data is None:
            raise ConfigError(f"--quantize static calibrates on your videos: pass {flag} DIR (DIR/<Class>/<video>)")
        spec = ClipSpec.load(export_dir)
        calibration = calibration_clips(spec, calibration_data, clips, flag=flag)
        graph_input = onnx.load(source, load_external_data=False).graph.input[0]
        uint8 = graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
        feed = ClipFeed(calibration, graph_input.name, uint8, spec)
        details |= {"calibration_data": str(calibration_data), "calibration_clips": len(calibration)}
    external = (export_dir / (ONNX_FILE + ".data")).is_file()  # weights over 2 GB stay outside the graph
    with tempfile.TemporaryDirectory(dir=export_dir) as tmp, quiet_info():
        prepared = Path(tmp) / ONNX_FILE
        try:
            # Shape inference and graph fusions first, as onnxruntime recommends: quantisation then sees whole
            # MatMuls with known shapes.
            quant_pre_process(source, prepared, save_as_external_data=external)
            if mode == "static":
                _quantize_static(prepared, target, feed, external)
            else:
                _quantize_dynamic(prepared, target, external)
        except Exception as err:  # onnxruntime's tools raise whatever their passes raise
            raise ConfigError(f"{source}: int8 quantisation failed ({reason(err)})") from err
    return target, details


def _quantize_dynamic(prepared: Path, target: Path, external: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # MatMul and Gemm hold nearly all of a video transformer's weights and work. The patch embedding
    # convolution stays float: ConvInteger would quantise the pixels of a whole clip with one scale per call.
    quantize_dynamic(
        prepared,
        target,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        use_external_data_format=external,
    )


def _quantize_static(prepared: Path, target: Path, feed: ClipFeed, external: bool) -> None:
    """QDQ int8 of every MatMul and Gemm (weights per output channel), each choice measured on VideoMAE-base
    (BENCHMARKS.md): int8 weights with uint8 activations, the pair x86 CPUs multiply fastest (int8 activations
    left some attention MatMuls in float and ran slower); the MatMuls' outputs stay float, because quantising them
    let onnxruntime fuse each Softmax between two int8 MatMuls into QLinearSoftmax, which took a third of the
    time, and doubled the logit error. The patch embedding (Conv) stays float: one scale for all of a clip's pixels.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        prepared,
        target,
        feed,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gemm"],  # pre-processing fused each linear layer into a Gemm
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        use_external_data_format=external,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"]},
    )


def int8_accuracy(model_dir: str | Path, export_dir: str | Path, eval_dir: str | Path, *, num_workers: int = 2) -> dict:
    """Per-video top-1 accuracy of the PyTorch model and of its int8 export on ``eval_dir/<Class>/<video>``.

    Both are ``evaluate_records`` of the same videos, one with each predictor, so the figures are those
    ``vidcls evaluate`` would give; videos that cannot be decoded are counted as skipped.
    """
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        raise ConfigError(f"--eval_data {eval_dir}: no such folder; pass a split folder DIR/<Class>/<video>")
    classes = scan_split(eval_dir)
    sides = {
        "torch": Predictor.from_pretrained(model_dir, device="cpu"),
        "int8": Predictor.from_pretrained(export_dir, backend="onnx", int8=True),
    }
    label2id = {name: int(i) for i, name in sides["torch"].id2label.items()}
    unknown = sorted(set(classes) - set(label2id))
    if unknown:
        raise ConfigError(
            f"--eval_data {eval_dir}: class folders {', '.join(unknown[:5])} are not labels of the model "
            f"({', '.join(sorted(label2id)[:10])}); pass a split of the dataset it was trained on"
        )
    records = [VideoRecord(Path(path), label2id[name], "") for name, paths in classes.items() for path in paths]
    reports = {
        name: evaluate_records(predictor, records, output_file=None, num_workers=num_workers)
        for name, predictor in sides.items()
    }
    # Both skip the same undecodable videos, so their per-video rows line up.
    labels = {name: [row["predicted_label"] for row in report["predictions"]] for name, report in reports.items()}
    agree = sum(a == b for a, b in zip(labels["torch"], labels["int8"], strict=True))
    torch_accuracy, int8_accuracy = reports["torch"]["accuracy"], reports["int8"]["accuracy"]
    return {
        "eval_data": str(eval_dir),
        "videos": reports["int8"]["num_videos"],
        "skipped": reports["int8"]["num_skipped_videos"],
        "torch_accuracy": torch_accuracy,
        "int8_accuracy": int8_accuracy,
        "accuracy_change": int8_accuracy - torch_accuracy,
        "top1_agreement": agree / len(labels["int8"]),  # share of videos whose label int8 leaves unchanged
    }
