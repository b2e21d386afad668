"""A trained model loaded once for scoring many videos: the model half of "the scores of a video".

``Predictor`` scores the views ``data.clips.ClipReader`` reads (the whole video, as in evaluation) and averages
them with ``data.clips.video_scores``; the model is a transformers classifier or its ONNX export
(``models.onnx``), called the same way. Both take the uint8 clips as they are when the pixel normalisation is
folded into their first layer (``models.folding``: ``from_pretrained`` folds the torch model as it loads it, and
``vidcls export`` writes graphs folded); a model built by hand and not folded gets normalised clips.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from vidcls.config import ClipSpec, EvalViews
from vidcls.data.clips import ClipReader, mean_scores
from vidcls.engine.batching import prepare_pixels
from vidcls.errors import ConfigError
from vidcls.models.factory import load_trained
from vidcls.models.families import class_logits, family_of
from vidcls.models.folding import fold_normalization, takes_uint8


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` (a CUDA GPU if there is one, else the CPU), or the device named; ConfigError if it is not here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"--device {device}: not a device name; use auto, cpu, cuda, cuda:1 or mps") from err
    if chosen.type == "cuda" and (not torch.cuda.is_available() or (chosen.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"--device {device}: no such CUDA GPU is visible here; use --device cpu, or auto")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: Apple's MPS is not available here; use --device cpu, or auto")
    return chosen


class Predictor:
    """A trained model loaded once, for predicting many videos.

    Example:
        >>> predictor = Predictor.from_pretrained("runs/demo")
        >>> predictor.predict("clip.avi", top_k=3)
        [{'label': 'DriftEast', 'score': 0.97}, ...]
        >>> records = list(predictor.predict_many(["a.mp4", "b.mp4"], top_k=1))
        >>> predictor.predict_timeline("match.mp4", window_s=4, stride_s=2)["segments"]
        [{'label': 'DriftEast', 'start': 0.0, 'end': 12.0, 'score': 0.91}, ...]
    """

    def __init__(self, model, spec: ClipSpec, device: str = "auto", views: EvalViews = EvalViews()):
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.spec = spec
        self.input_name = family_of(model.config).input_name
        self.reader = ClipReader(spec, views)
        self.id2label = model.config.id2label

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        device: str = "auto",
        *,
        backend: str = "torch",
        int8: bool = False,
        views: EvalViews = EvalViews(),
    ) -> Predictor:
        """The model of ``vidcls train`` (backend "torch"), or its ``vidcls export`` run by onnxruntime (backend
        "onnx": ``model_dir`` is the model folder, then its ``onnx/``, or the export folder; ``int8`` picks
        ``model.int8.onnx``); ``views`` are the clips and crops each video is scored from."""
        if backend == "onnx":
            from vidcls.models.onnx import load_onnx  # the onnx extra, imported only when asked for

            model, spec = load_onnx(model_dir, int8=int8, device=device)
            return cls(model, spec, "cpu", views)  # onnxruntime reads NumPy arrays: clips stay on the CPU
        if backend != "torch":
            raise ConfigError(f"--backend {backend}: choose torch or onnx")
        if int8:
            raise ConfigError("--int8 runs model.int8.onnx of vidcls export --quantize: add --backend onnx")
        model, spec = load_trained(model_dir)
        fold_normalization(model, spec.mean, spec.std)  # for inference only: the folder on disk stays standard
        return cls(model, spec, device, views)

    def clips_from_file(self, path: str | Path) -> torch.Tensor:
        """uint8 (N, T, C, H, W): the views of a video file."""
        return self.reader.from_file(path)

    def clips_from_frames(self, frames) -> torch.Tensor:
        """uint8 (N, T, C, H, W) from decoded frames (T, H, W, 3), uint8 NumPy array or tensor."""
        return self.reader.from_frames(frames)

    @torch.inference_mode()
    def logits(self, clips: torch.Tensor) -> torch.Tensor:
        """Raw model outputs for uint8 clips (N, T, C, H, W), from any number of videos: float32 (N, K) on the CPU."""
        batch = {self.input_name: clips.to(self.device)}
        if not takes_uint8(self.model):  # a folded model casts the clips itself: no normalisation pass
            batch = prepare_pixels(batch, self.input_name, self.spec)
        return class_logits(self.model(**batch).logits).float().cpu()

    def scores(self, clips: torch.Tensor) -> torch.Tensor:
        """Class scores (K,) of one video from its views (N, T, C, H, W): ``data.clips.mean_scores``."""
        return torch.from_numpy(mean_scores(self.logits(clips))).float()

    def top_k(self, scores, top_k: int = 5) -> list[dict]:
        """The ``top_k`` best labels of a video's class scores (K,), a tensor or NumPy array, best first."""
        values, ids = torch.as_tensor(scores).topk(min(top_k, len(scores)))
        return [{"label": self.id2label[int(i)], "score": float(v)} for v, i in zip(values, ids, strict=True)]

    def predict(self, path: str | Path, top_k: int = 5) -> list[dict]:
        """Top-k labels of a video file, in the pipeline's format ``[{"label", "score"}]``."""
        return self.top_k(self.scores(self.clips_from_file(path)), top_k)

    def predict_frames(self, frames, top_k: int = 5) -> list[dict]:
        """Top-k labels of frames already in memory (T, H, W, 3), sampled as for a file."""
        return self.top_k(self.scores(self.clips_from_frames(frames)), top_k)

    def predict_many(
        self, videos: Iterable[str | Path], top_k: int = 5, *, batch_size: int = 16, num_workers: int | None = None
    ) -> Iterator[dict]:
        """Records ``{"video", "predictions"}`` or ``{"video", "error"}`` in input order; see ``predict_batch``."""
        from vidcls.engine.predict_batch import predict_records

        return predict_records(self, list(videos), top_k=top_k, batch_size=batch_size, num_workers=num_workers)

    def predict_timeline(
        self, path: str | Path, window_s: float | None = None, stride_s: float | None = None, **options
    ) -> dict:
        """Labelled segments over the whole of a (long) video, frames streamed; ``options`` (``batch_size``,
        ``max_windows``, ``should_stop``) and errors as in ``engine.timeline.predict_timeline``."""
        from vidcls.engine.timeline import predict_timeline

        return predict_timeline(self, path, window_s, stride_s, **options)
