"""Export trained models to ONNX, verify them against PyTorch, quantise them, and run them with onnxruntime.

An export folder holds ``model.onnx`` (uint8 pixels (B, T, C, H, W) -> class logits (B, K); the normalisation
with ``vidcls.json``'s mean and std is folded into the graph, so a caller casts nothing), the model's
``config.json`` (label map), ``vidcls.json`` (clip settings) and ``export_report.json``; optionally
``model.int8.onnx`` (same input). onnx, onnxscript and onnxruntime are the ``vidcls[onnx]`` extra, imported only
when used.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

REPORT_FILE = "export_report.json"
DEFAULT_OPSET = 18  # run by onnxruntime >= 1.14 and most other runtimes
INT8_MODES = ("dynamic", "static")  # what --quantize writes: see export/quantize.py
# Static int8 fixes each activation's scale from its range over these clips: a few dozen cover a split's
# classes, and each costs a forward pass (several seconds for a base model on a CPU).
DEFAULT_CALIBRATION_CLIPS = 64


@contextmanager
def quiet_info():
    """Mute INFO logs for a block: onnxscript's and onnxruntime's passes log every initializer and node there,
    some on the root logger, which the CLI shows at INFO."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)
