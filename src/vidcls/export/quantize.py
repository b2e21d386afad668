"""Dynamic int8 quantisation of an exported graph, and what it costs in accuracy on a labelled split.

Dynamic quantisation stores MatMul/Gemm weights as int8 and quantises activations on the fly, per call: it needs
no calibration data, which is why it is the one offered here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from vidcls.data.discovery import scan_split
from vidcls.engine.predict import Predictor
from vidcls.engine.predict_batch import VideoInputs
from vidcls.errors import ConfigError, DatasetError
from vidcls.export import INT8_FILE, ONNX_FILE, quiet_info, reason, require


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

    Each video is decoded once and scored by both, as ``vidcls predict`` scores it (clip probabilities averaged).
    Videos that cannot be decoded are counted as skipped.
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
    videos = [(str(path), label2id[name]) for name, paths in classes.items() for path in paths]
    inputs = VideoInputs([path for path, _ in videos], sides["torch"].reader)
    loader = torch.utils.data.DataLoader(inputs, batch_size=None, num_workers=num_workers)  # one video per item
    correct, agree, scored = {"torch": 0, "int8": 0}, 0, 0
    for item in loader:
        if "error" in item:
            continue
        top = {name: int(side.scores(item["clips"]).argmax()) for name, side in sides.items()}
        label = videos[item["index"]][1]
        correct = {name: correct[name] + (top[name] == label) for name in correct}
        agree += top["torch"] == top["int8"]
        scored += 1
    if not scored:
        raise DatasetError(f"--eval_data {eval_dir}: none of its {len(videos)} videos could be decoded")
    accuracy = {name: count / scored for name, count in correct.items()}
    return {
        "eval_data": str(eval_dir),
        "videos": scored,
        "skipped": len(videos) - scored,
        "torch_accuracy": accuracy["torch"],
        "int8_accuracy": accuracy["int8"],
        "accuracy_change": accuracy["int8"] - accuracy["torch"],
        "top1_agreement": agree / scored,  # share of videos whose label int8 leaves unchanged
    }
