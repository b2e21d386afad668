"""Verify an exported graph: onnxruntime against PyTorch on the clips of a real video, as prediction reads them.

Both sides go through ``Predictor.logits`` (the one seam where the model is called), so the check covers what
``vidcls predict --backend onnx`` runs: the same decoded uint8 clips, the same normalisation, the same batching.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from vidcls.config import ClipSpec
from vidcls.data.clips import ClipReader
from vidcls.data.synthetic import drifting_frames, random_texture, write_video
from vidcls.engine.predict import Predictor
from vidcls.errors import ConfigError
from vidcls.models.onnx import OnnxClassifier

TOLERANCE = 1e-4  # largest |logit difference| to PyTorch an export may have
GENERATED = "generated"  # what the report names when no --verify_video was given


def verification_clips(spec: ClipSpec, video: str | Path | None = None) -> tuple[torch.Tensor, str]:
    """uint8 clips (N, T, C, H, W) of ``video``, or of a generated video when None, and where they came from.

    The generated video is a drifting texture (``vidcls.data.synthetic``) of one clip span, encoded to MPEG-4 and
    decoded again, so its frames carry the blocks and ringing of real footage, not clean noise.
    """
    reader = ClipReader(spec)
    if video is not None:
        if not Path(video).is_file():
            raise ConfigError(f"--verify_video {video}: no such file")
        return reader.from_file(video), str(video)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "verify.avi"
        rng = np.random.default_rng(0)
        write_video(path, drifting_frames(random_texture(rng), 30.0, 4.0, max(spec.span, 25), rng))
        return reader.from_file(path), GENERATED


def max_logit_diff(model, onnx_path: str | Path, spec: ClipSpec, clips: torch.Tensor) -> float:
    """Largest |logit difference| between ``model`` (PyTorch) and ``onnx_path`` (onnxruntime) over ``clips``."""
    expected = Predictor(model, spec, device="cpu").logits(clips)
    actual = Predictor(OnnxClassifier(onnx_path, model.config), spec, device="cpu").logits(clips)
    return float((expected - actual).abs().max())


def verify(model, onnx_path: str | Path, spec: ClipSpec, video: str | Path | None = None) -> dict:
    """Check an export on real frames; its figures for the report, or a ``ConfigError`` when they differ."""
    clips, source = verification_clips(spec, video)
    diff = max_logit_diff(model, onnx_path, spec, clips)
    if not diff <= TOLERANCE:  # also catches NaN
        raise ConfigError(
            f"{model.config.model_type} exported to ONNX gives logits up to {diff:.3g} away from PyTorch's on "
            f"{source} (tolerance {TOLERANCE:g}); the export is not faithful, try another --opset"
        )
    return {
        "max_abs_diff": diff,
        "tolerance": TOLERANCE,
        "verify_video": source,
        "clips": len(clips),
        "frames": len(clips) * clips.shape[1],
    }
