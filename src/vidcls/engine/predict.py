"""Whole-video prediction: evenly spaced clips over the entire video, class scores averaged.

``transformers.pipeline("video-classification")`` looks at one clip from the first frames of a video;
``Predictor`` covers the whole video with ``spec.eval_clips`` clips, sampled and resized exactly as in
evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidcls.config import ClipSpec
from vidcls.data.decode import probe, read_frames
from vidcls.data.sampling import uniform_clips
from vidcls.data.transforms import build_transform, decode_short_side, to_video_tensor
from vidcls.engine.batching import prepare_pixels
from vidcls.models.factory import load_trained
from vidcls.models.families import family_of


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Predictor:
    """A trained model loaded once, for predicting many videos.

    Example:
        >>> predictor = Predictor.from_pretrained("runs/demo")
        >>> predictor.predict("clip.avi", top_k=3)
        [{'label': 'DriftEast', 'score': 0.97}, ...]
    """

    def __init__(self, model, spec: ClipSpec, device: str = "auto"):
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.spec = spec
        self.input_name = family_of(model.config).input_name
        self.transform = build_transform(spec, train=False)
        self.id2label = model.config.id2label

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "auto") -> Predictor:
        model, spec = load_trained(model_dir)
        return cls(model, spec, device)

    def clips_from_file(self, path: str | Path) -> torch.Tensor:
        """uint8 (N, T, C, H, W): the evaluation clips of a video file."""
        info = probe(path)
        indices = uniform_clips(info.num_frames, self.spec.num_frames, self.spec.sample_rate, self.spec.eval_clips)
        # One decoding pass for all clips; (N*T, H, W, 3) -> N clips.
        frames = read_frames(path, np.concatenate(indices), info, decode_short_side(self.spec, train=False))
        return self._to_clips(frames.reshape(len(indices), self.spec.num_frames, *frames.shape[1:]))

    def clips_from_frames(self, frames) -> torch.Tensor:
        """uint8 (N, T, C, H, W) from decoded frames (T, H, W, 3), uint8 NumPy array or tensor."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        indices = uniform_clips(len(frames), self.spec.num_frames, self.spec.sample_rate, self.spec.eval_clips)
        return self._to_clips(np.stack([frames[i] for i in indices]))

    def _to_clips(self, clips: np.ndarray) -> torch.Tensor:
        # (N, T, H, W, 3) -> N transformed (T, C, H, W) clips, stacked
        return torch.stack([self.transform(to_video_tensor(clip)).as_subclass(torch.Tensor) for clip in clips])

    @torch.inference_mode()
    def scores(self, clips: torch.Tensor) -> torch.Tensor:
        """Class probabilities averaged over the clips of one video: (K,)."""
        batch = prepare_pixels({self.input_name: clips.to(self.device)}, self.input_name, self.spec)
        logits = self.model(**batch).logits.float()
        return logits.softmax(-1).mean(0).cpu()

    def top_k(self, scores: torch.Tensor, top_k: int = 5) -> list[dict]:
        values, ids = scores.topk(min(top_k, len(scores)))
        return [{"label": self.id2label[int(i)], "score": float(v)} for v, i in zip(values, ids, strict=True)]

    def predict(self, path: str | Path, top_k: int = 5) -> list[dict]:
        """Top-k labels of a video file, in the pipeline's format ``[{"label", "score"}]``."""
        return self.top_k(self.scores(self.clips_from_file(path)), top_k)

    def predict_frames(self, frames, top_k: int = 5) -> list[dict]:
        """Top-k labels of frames already in memory (T, H, W, 3), sampled as for a file."""
        return self.top_k(self.scores(self.clips_from_frames(frames)), top_k)
