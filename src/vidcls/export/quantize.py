"""Dynamic int8 quantisation of an exported graph, and what it costs in accuracy on a labelled split.

Dynamic quantisation stores MatMul/Gemm weights as int8 and quantises activations on the fly, per call: it needs
no calibration data, which is why it is the one offered here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vidcls.data.discovery import VideoRecord, scan_split
from vidcls.engine.evaluate import evaluate_records
from vidcls.engine.predict import Predictor
from vidcls.errors import ConfigError
from vidcls.export import quiet_info
from vidcls.models.onnx import INT8_FILE, ONNX_FILE, reason, require


def quantize_int8(export_dir: str | Path) -> Path:
    """Write ``model.int8.onnx`` next to ``model.onnx`` in an export folder; return its path."""
    require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    export_dir = Path(export_dir)
    source, target = export_dir / ONNX_FILE, export_dir / INT8_FILE
    external = (export_dir / (ONNX_FILE + ".data")).is_file()  # weights over 2 GB stay outside the graph
    with tempfile.TemporaryDirectory(dir=export_dir) as tmp, quiet_info():
        prepared = Path(tmp) / ONNX_FILE
        try:
            # Shape inference and graph fusions first, as onnxruntime recommends: quantisation then sees whole
            # MatMuls with known shapes.
            quant_pre_process(source, prepared, save_as_external_data=external)
            # MatMul and Gemm hold nearly all of a video transformer's weights and work. The patch embedding
            # convolution stays float: ConvInteger would quantise the pixels of a whole clip with one scale per call.
            quantize_dynamic(
                prepared,
                target,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm"],
                use_external_data_format=external,
            )
        except Exception as err:  # onnxruntime's tools raise whatever their passes raise
            raise ConfigError(f"{source}: int8 quantisation failed ({reason(err)})") from err
    return target


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
