"""An exported model run by onnxruntime, loaded beside the PyTorch one (``factory.load_trained``): what
``Predictor`` runs for ``--backend onnx``.

Loading reads ``config.json`` and ``vidcls.json`` of an export folder and opens the ONNX file; no torch model is
built, so a server starts in the time it takes onnxruntime to load the graph. onnx, onnxscript and onnxruntime are
the ``vidcls[onnx]`` extra, imported only when used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vidcls.config import ClipSpec
from vidcls.errors import ConfigError, MissingDependency
from vidcls.models.families import family_of

EXPORT_SUBDIR = "onnx"  # the default export folder, inside the model folder
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"


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


class OnnxClassifier:
    """An exported classifier that ``Predictor`` calls exactly as it calls the transformers model it replaces.

    It has the model's ``config`` (labels, model type), no-op ``to``/``eval``, and ``model(**{input_name: pixels})``
    returns an object whose ``logits`` are float32 (B, K) on the CPU. A graph exported with a fixed batch (1, the
    default of ``vidcls export``) is run one clip at a time. ``takes_uint8`` says what its input is: uint8 pixels
    (the normalisation folded into the graph, as ``vidcls export`` writes it) or, for graphs exported before
    vidcls folded it, float32 pixels already normalised.
    """

    def __init__(self, onnx_path: str | Path, config, *, device: str = "cpu", threads: int = 0):
        import torch  # here, not at the top: the CLI reads this module's file names for its help, without torch

        ort = require("onnxruntime")
        options = ort.SessionOptions()
        # torch's own thread count unless told otherwise, so both backends use the same cores.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # Idle threads sleep rather than spin: between calls the cores belong to decoding workers, request threads
        # or torch. On 2 cores, spinning made torch calls alternating with onnxruntime's 13x slower (16 px VideoMAE:
        # 1.3 -> 16.8 ms) to save 0.06 ms per onnxruntime call.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")  # only with the onnxruntime-gpu package
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own types (Fail, InvalidGraph, NoSuchFile, ...)
            raise ConfigError(f"{onnx_path}: onnxruntime {ort.__version__} cannot load it ({reason(err)})") from err
        self.config = config
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        self.fixed_batch = graph_input.shape[0] if isinstance(graph_input.shape[0], int) else None
        self.takes_uint8 = graph_input.type == "tensor(uint8)"  # read by models.folding.takes_uint8

    def to(self, device) -> OnnxClassifier:
        return self

    def eval(self) -> OnnxClassifier:
        return self

    def __call__(self, **inputs) -> SimpleNamespace:
        import torch

        pixels = inputs[self.input_name].detach().cpu().numpy()  # (B, T, C, H, W): uint8, or float32 normalised
        step = self.fixed_batch or len(pixels)
        logits = [
            self.session.run(None, {self.input_name: pixels[start : start + step]})[0]
            for start in range(0, len(pixels), step)
        ]
        return SimpleNamespace(logits=torch.from_numpy(np.concatenate(logits)))


def find_export_dir(path: str | Path, file: str = ONNX_FILE) -> Path:
    """The folder holding ``file``: ``path`` itself (an export folder) or ``path/onnx`` (a model folder)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"--model_dir {path}: no such folder")
    for folder in (path, path / EXPORT_SUBDIR):
        if (folder / file).is_file():
            return folder
    flag = " --quantize" if file == INT8_FILE else ""
    raise ConfigError(
        f"--model_dir {path}: no {file} there nor in {path / EXPORT_SUBDIR}; run vidcls export --model_dir {path}{flag}"
    )


def load_onnx(path: str | Path, *, int8: bool = False, device: str = "cpu", threads: int = 0):
    """An ``OnnxClassifier`` and its clip specification, from an export folder or a model folder holding one."""
    from transformers import AutoConfig

    file = INT8_FILE if int8 else ONNX_FILE
    folder = find_export_dir(path, file)
    spec = ClipSpec.load(folder)
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{folder}: cannot read the model's config.json ({reason(err)}); export again") from err
    family_of(config)
    return OnnxClassifier(folder / file, config, device=device, threads=threads), spec
