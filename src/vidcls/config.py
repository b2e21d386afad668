"""What a clip is for a model (``ClipSpec``), how many views a video is scored from (``EvalViews``), and how
training varies its clips (``Augmentation``).

Only the clip specification belongs to the model: it is resolved once (explicit flags > the model's own processor
config > defaults), saved next to the model as ``vidcls.json``, and read back by evaluation, prediction, serving
and export, so training and inference can never disagree about what a clip is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from vidcls.errors import ConfigError

CLIP_SPEC_FILE = "vidcls.json"

# ImageNet statistics, the default of VideoMAE's processor; a model's processor config overrides them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClipSpec:
    """What one clip is, for a model: the contract between a trained model and every command that feeds it.

    A clip is ``num_frames`` frames taken every ``sample_rate`` frames at the video's own frame rate, so it
    spans ``num_frames * sample_rate`` frames (64 by default: 2.56 s at 25 fps), resized to ``image_size``
    squared and normalised with ``mean``/``std``. How many clips a video is scored from is ``EvalViews``; how
    training varies its clips is ``Augmentation``: neither is part of the model.
    """

    num_frames: int = 16
    sample_rate: int = 4
    image_size: int = 224  # the model's input height and width
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self):
        for name in ("num_frames", "sample_rate", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError(f"mean and std need 3 values (RGB), got {self.mean} and {self.std}")

    @property
    def span(self) -> int:
        """Frames covered by one clip at the video's frame rate."""
        return self.num_frames * self.sample_rate

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CLIP_SPEC_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ClipSpec:
        path = Path(directory) / CLIP_SPEC_FILE
        if not path.is_file():
            raise ConfigError(
                f"{path} not found: {directory} is not a vidcls model folder (train one with vidcls train)"
            )
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}  # files of vidcls 0.1 also hold views and augmentation: ignored
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**kwargs)


@dataclass(frozen=True)
class EvalViews:
    """The views a video is scored from: ``clips`` evenly spaced clips x ``crops`` spatial crops of each.

    1 crop is the frame resized to the model's size (the guide's evaluation); 3 are the left/centre/right crops
    of the short-side-resized frame, as VideoMAE and SlowFast test ("5x3" = 5 clips x 3 crops).
    """

    clips: int = 4
    crops: int = 1

    def __post_init__(self):
        if not isinstance(self.clips, int) or self.clips < 1:
            raise ConfigError(f"--clips must be a positive integer, got {self.clips!r}")
        if self.crops not in (1, 3):
            raise ConfigError(f"--num_crops must be 1 or 3 (the 3-crop test of VideoMAE), got {self.crops!r}")

    def __str__(self) -> str:
        return f"{self.clips}x{self.crops}"


@dataclass(frozen=True)
class Augmentation:
    """How training varies its clips; set by the flags and the recipe (engine/recipes.py), never at inference."""

    hflip: bool = True  # random horizontal flip; off when labels depend on direction
    # The random short-side scale, as a ratio of the model's size: the guide's 256-320 for a 224 crop.
    scale_range: tuple[float, float] = field(default=(256 / 224, 320 / 224))
    rand_augment: tuple[int, int] | None = None  # RandAugment (ops, magnitude of 10), the same for every frame
    random_erasing: float = 0.0  # probability of erasing one random rectangle, the same in every frame

    def __post_init__(self):
        low, high = self.scale_range
        if not 1.0 <= low <= high:
            raise ConfigError(f"scale_range must satisfy 1 <= low <= high, got {self.scale_range}")
        if self.rand_augment is not None:
            num_ops, magnitude = self.rand_augment
            if num_ops < 1 or not 0 <= magnitude <= 10:
                raise ConfigError(
                    f"--rand_augment N,M needs N >= 1 ops and a magnitude M in 0..10, got {num_ops},{magnitude}"
                )
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ConfigError(f"--random_erasing is a probability in [0, 1], got {self.random_erasing!r}")
