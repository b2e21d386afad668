"""Export trained models to ONNX, verify them against PyTorch, quantise them, and run them with onnxruntime.

An export folder holds ``model.onnx`` (normalised float pixels (B, T, C, H, W) -> class logits (B, K)), the
model's ``config.json`` (label map), ``vidcls.json`` (clip settings) and ``export_report.json``; optionally
``model.int8.onnx``. onnx, onnxscript and onnxruntime are the ``vidcls[onnx]`` extra, imported only when used.
"""

from __future__ import annotations

import importlib
import logging
from contextlib import contextmanager

from vidcls.errors import MissingDependency

EXPORT_SUBDIR = "onnx"  # the default export folder, inside the model folder
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
REPORT_FILE = "export_report.json"
DEFAULT_OPSET = 18  # run by onnxruntime >= 1.14 and most other runtimes


def reason(err: Exception, limit: int = 300) -> str:
    """An exception's message on one line, cut to ``limit`` characters: exporter errors run to pages."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def require(module: str):
    """Import a module of the ``onnx`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependency(
            f"ONNX export and --backend onnx need {module} ({err}); pip install 'vidcls[onnx]'"
        ) from err


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
