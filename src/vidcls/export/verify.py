"""Verify an exported graph: onnxruntime against PyTorch on the clips of a real video, as prediction reads them.

Both sides go through ``Predictor.logits`` (the one seam where the model is called), so the check covers what
``vidcls predict --backend onnx`` runs: the same decoded uint8 clips, the same batching. The PyTorch side is the
model as saved, normalising the clips before it; the graph has the normalisation folded into its first layer.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Reference:
    """What an export is checked against: the clips of a video and the logits PyTorch gives them."""

    clips: torch.Tensor  # uint8 (N, T, C, H, W)
    source: str  # the video's path, or GENERATED
    logits: torch.Tensor  # float32 (N, K)


def reference(model, spec: ClipSpec, video: str | Path | None = None) -> Reference:
    """The clips of ``video`` (``verification_clips``) and ``model``'s logits for them, through ``Predictor.logits``.

    Take it before the export folds the normalisation into ``model``, so the check covers the fold too.
    """
    clips, source = verification_clips(spec, video)
    return Reference(clips, source, Predictor(model, spec, device="cpu").logits(clips))


def verify(expected: Reference, onnx_path: str | Path, config, spec: ClipSpec) -> dict:
    """Check an export (``config``: its model's) on real frames; figures for the report, or a ``ConfigError``."""
    clips = expected.clips
    actual = Predictor(OnnxClassifier(onnx_path, config), spec, device="cpu").logits(clips)
    diff = float((expected.logits - actual).abs().max())
    if not diff <= TOLERANCE:  # also catches NaN
        raise ConfigError(
            f"{config.model_type} exported to ONNX gives logits up to {diff:.3g} away from PyTorch's on "
            f"{expected.source} (tolerance {TOLERANCE:g}); the export is not faithful, try another --opset"
        )
    return {
        "max_abs_diff": diff,
        "tolerance": TOLERANCE,
        "verify_video": expected.source,
        "clips": len(clips),
        "frames": len(clips) * clips.shape[1],
    }
