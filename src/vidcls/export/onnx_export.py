"""Export a trained model folder to ONNX: graph, ``onnx.checker``, verification on real frames, files beside it.

The exporter is ``torch.onnx.export(..., dynamo=True)``: the ``torch.export``-based one, torch's default since
2.9 and the one maintained (the TorchScript exporter is deprecated). It exports every family of the table,
VideoPrism included. Two of its habits are guarded here: it writes opset 18 for any older ``--opset`` without a
word, and a newer one its version converter cannot reach falls back to 18 too, so the written opset is checked.

The graph takes uint8 pixels: the normalisation is folded into the model's patch embedding (``models.folding``),
and the graph casts the pixels to float right before it. It is verified against the model as saved (not folded).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from vidcls.config import CLIP_SPEC_FILE, ClipSpec
from vidcls.data.transforms import scale_and_shift
from vidcls.errors import ConfigError
from vidcls.export import DEFAULT_OPSET, REPORT_FILE, quiet_info
from vidcls.export.verify import reference, verify
from vidcls.models.factory import load_trained
from vidcls.models.families import class_logits, family_of
from vidcls.models.folding import fold_normalization, takes_uint8
from vidcls.models.onnx import INT8_FILE, ONNX_FILE, reason, require

MIN_OPSET = 18  # the oldest opset the dynamo exporter writes
# Files an export folder may hold; a new export replaces them all, so no stale int8 model outlives its source.
EXPORT_FILES = (ONNX_FILE, ONNX_FILE + ".data", INT8_FILE, INT8_FILE + ".data", "config.json", CLIP_SPEC_FILE)


class ClassLogits(torch.nn.Module):
    """The exported function: uint8 pixels (B, T, C, H, W) -> class logits (B, K).

    A folded model (``models.folding``) takes the pixels as they are; any other is given them normalised here,
    in the graph (a Cast, a Mul and an Add), so every exported graph takes uint8.
    """

    def __init__(self, model, spec: ClipSpec):
        super().__init__()
        self.model = model
        self.input_name = family_of(model.config).input_name
        self.folded = takes_uint8(model)
        scale, shift = scale_and_shift(spec.mean, spec.std)
        self.register_buffer("scale", scale.view(-1, 1, 1), persistent=False)  # (C, 1, 1): per channel
        self.register_buffer("shift", shift.view(-1, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if not self.folded:
            pixels = pixels.float() * self.scale + self.shift
        return class_logits(self.model(**{self.input_name: pixels}).logits)


def check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise ConfigError(f"--opset {opset}: the exporter writes opset {MIN_OPSET} or newer; pass --opset {MIN_OPSET}")


def export_graph(model, spec, path: str | Path, *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False) -> int:
    """Write the ONNX graph of ``model`` for clips of ``spec`` to ``path``, check it; return the opset written.

    The graph's input has the family's input name (``pixel_values`` or ``pixel_values_videos``) and takes uint8
    pixels (``ClassLogits``), its output is ``logits``. Its batch is 1 unless ``dynamic_batch``; frames and size
    are those of ``spec``.
    """
    require("onnxscript")  # the dynamo exporter translates through it
    onnx = require("onnx")
    model_type = model.config.model_type
    check_opset(opset)
    wrapper = ClassLogits(model, spec).eval()
    # torch.export specialises a size-1 dimension to a constant, so a dynamic batch needs an example of 2.
    shape = (2 if dynamic_batch else 1, spec.num_frames, getattr(model.config, "num_channels", 3))
    shape = (*shape, spec.image_size, spec.image_size)
    example = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    try:
        with quiet_info():
            program = torch.onnx.export(
                wrapper,
                (example,),
                input_names=[wrapper.input_name],
                output_names=["logits"],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None,
                verbose=False,
            )
            program.save(path)  # weights over 2 GB go to model.onnx.data, protobuf's limit
    except Exception as err:  # torch.export and the translation raise many types; each means "cannot export"
        raise ConfigError(f"{model_type} cannot be exported to ONNX: {reason(err)}") from err
    written = next(o.version for o in onnx.load(path, load_external_data=False).opset_import if o.domain == "")
    if written != opset:
        raise ConfigError(
            f"--opset {opset}: torch {torch.__version__} wrote opset {written} for {model_type} instead; "
            f"pass --opset {written}"
        )
    try:
        onnx.checker.check_model(str(path), full_check=True)  # a path, so graphs over 2 GB can be checked
    except onnx.checker.ValidationError as err:
        raise ConfigError(f"{model_type} exported to an invalid ONNX graph (opset {opset}): {reason(err)}") from err
    return written


def export_model(
    model_dir: str | Path,
    output_dir: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    verify_video: str | Path | None = None,
) -> dict:
    """Export ``vidcls train``'s output to ``output_dir``; return the report written there as export_report.json.

    The files are written to a temporary folder and moved into ``output_dir`` only once verified, so a failed
    export never leaves a ``model.onnx`` behind for ``--backend onnx`` to pick up. The graph is verified against
    the logits of the model as saved, taken before its normalisation is folded in: the check covers the fold.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if not (model_dir / CLIP_SPEC_FILE).is_file():
        raise ConfigError(f"--model_dir {model_dir}: no {CLIP_SPEC_FILE} there; pass the output folder of vidcls train")
    if output_dir.resolve() == model_dir.resolve():
        raise ConfigError(
            f"--output_dir {output_dir}: pick another folder than --model_dir (the export has its own config.json)"
        )
    check_opset(opset)
    _check_family(model_dir)
    model, spec = load_trained(model_dir)
    expected = reference(model, spec, verify_video)
    folded = fold_normalization(model, spec.mean, spec.std)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output_dir))
    try:
        written = export_graph(model, spec, staging / ONNX_FILE, opset=opset, dynamic_batch=dynamic_batch)
        checked = verify(expected, staging / ONNX_FILE, model.config, spec)
        model.config.save_pretrained(staging)  # config.json: the label map and the model type
        spec.save(staging)
        report = {
            "format": "onnx",
            "model_type": model.config.model_type,
            "opset": written,
            "dynamic_batch": dynamic_batch,
            "input_name": family_of(model.config).input_name,
            "input_dtype": "uint8",
            # False: the first layer did not allow the fold, and the graph normalises before it (ClassLogits).
            "normalization_folded": folded,
            **checked,
            "versions": _versions(),
        }
        write_report(staging, report)
        for name in EXPORT_FILES:
            (output_dir / name).unlink(missing_ok=True)
        for path in staging.iterdir():
            os.replace(path, output_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def write_report(export_dir: str | Path, report: dict) -> Path:
    path = Path(export_dir) / REPORT_FILE
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _check_family(model_dir: Path) -> None:
    """Refuse models vidcls does not support before their weights are read."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        raise ConfigError(f"--model_dir {model_dir}: cannot read its config.json ({reason(err)})") from err
    family_of(config)


def _versions() -> dict[str, str]:
    return {name: require(name).__version__ for name in ("onnx", "onnxruntime", "onnxscript")} | {
        "torch": torch.__version__
    }
