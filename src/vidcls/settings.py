"""The flag groups that several commands share, as dataclasses: each default is written once, here.

``HfArgumentParser`` turns each into a ``--help`` heading of its own (``_argument_group_name``); train's
``DataArguments`` extends ``LayoutFlags``, ``ClipFlags`` and ``DecodeFlags``. Nothing here imports torch, so
``--help`` is instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from vidcls.config import ClipSpec, EvalViews
from vidcls.data.layouts import LAYOUT_FLAG_HELP, LayoutOptions
from vidcls.errors import ConfigError

# Timeline windows per video unless --max_windows says otherwise: 2 h 46 min at a 1 s stride.
MAX_WINDOWS = 10_000
_LAYOUT_DEFAULTS = LayoutOptions()
_CLIP_DEFAULTS = ClipSpec()


def _flag(default, help_text: str, **metadata):
    return field(default=default, metadata={"help": help_text, **metadata})


@dataclass
class DecodeFlags:
    """How training frames are decoded, and kept on disk for later epochs (train and pretrain)."""

    decoder: str = _flag("pyav", "pyav, or torchcodec (falls back to PyAV if it cannot load).")
    cache_dir: str | None = _flag(None, "Keep decoded frames here (reduced size) so later epochs skip decoding.")
    cache_max_gb: float = _flag(50.0, "Disk budget of --cache_dir; videos past it are decoded.")
    cache_max_ratio: float = _flag(
        10.0, "At most this many times the bytes of the source videos in --cache_dir (JPEG frames: 3-9x)."
    )
    cache_codec: str = _flag(
        "jpeg", "Training frames in --cache_dir: jpeg (3-9x the videos), or raw (70-220x; warm reads faster)."
    )


@dataclass
class LayoutFlags:
    """How a dataset without splits is split, which official list is read, and what reading it may take."""

    _argument_group_name = "dataset layout (pass evaluate the values given to train)"

    split_ratios: str | None = _flag(None, LAYOUT_FLAG_HELP["split_ratios"])
    group_pattern: str | None = _flag(None, LAYOUT_FLAG_HELP["group_pattern"])
    fold: int = _flag(1, LAYOUT_FLAG_HELP["fold"])
    split_seed: int = _flag(0, LAYOUT_FLAG_HELP["split_seed"])
    max_extract_gb: float = _flag(_LAYOUT_DEFAULTS.max_extract_gb, LAYOUT_FLAG_HELP["max_extract_gb"])
    max_archive_members: int = _flag(_LAYOUT_DEFAULTS.max_archive_members, LAYOUT_FLAG_HELP["max_archive_members"])
    allow_outside_paths: bool = _flag(False, LAYOUT_FLAG_HELP["allow_outside_paths"])

    def layout(self) -> LayoutOptions:
        return LayoutOptions.from_args(self)


@dataclass
class ClipFlags:
    """How clips are taken from a video."""

    _argument_group_name = "clips"

    num_frames: int | None = _flag(
        None, f"Frames per clip; unset: the model's ({_CLIP_DEFAULTS.num_frames} without a model)."
    )
    sample_rate: int = _flag(_CLIP_DEFAULTS.sample_rate, "Take every n-th frame at the video's own fps.")
    clips: int = _flag(EvalViews.clips, "Evenly spaced clips per video when evaluating (--eval_clips: deprecated).")

    def __post_init__(self):
        EvalViews(self.clips)  # a bad value fails with the flag, before any video is read


def parse_views(text: str) -> tuple[int, int]:
    """``"5x3"`` -> (5, 3): evenly spaced clips x spatial crops (1 or 3) per video."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match[1]) < 1 or int(match[2]) not in (1, 3):
        raise ConfigError(
            f"--views {text!r} is not CLIPSxCROPS with CLIPS >= 1 and CROPS 1 or 3 (e.g. 5x3, VideoMAE's test, or 4x1)"
        )
    return int(match[1]), int(match[2])


@dataclass
class ViewFlags:
    """The views each video is scored from (evaluate, predict, serve)."""

    _argument_group_name = "views per video"

    views: str | None = _flag(
        None, f"CLIPSxCROPS: 5x3 is VideoMAE's test (5 clips x 3 crops); None: {EvalViews()} (or the two flags below)."
    )
    clips: int | None = _flag(
        None, f"Evenly spaced clips per video (overrides --views; --eval_clips: deprecated); None: {EvalViews.clips}."
    )
    num_crops: int | None = _flag(None, "Spatial crops per clip, 1 or 3 (overrides --views); None: 1.")

    def __post_init__(self):
        self.eval_views()  # bad values fail with the flags, before any model loads

    def eval_views(self) -> EvalViews:
        clips, crops = parse_views(self.views) if self.views else (EvalViews.clips, EvalViews.crops)
        return EvalViews(
            clips if self.clips is None else self.clips, crops if self.num_crops is None else self.num_crops
        )


@dataclass
class DeviceFlags:
    """Where the model runs and how videos are fed to it."""

    _argument_group_name = "device and decoding"

    device: str = _flag("auto", "auto (a GPU if there is one), cpu, cuda, cuda:1, mps.")
    batch_size: int = _flag(8, "Clips (views) per model call.")
    num_workers: int | None = _flag(
        None,
        "Decoding processes; 0 decodes in the main process; None: chosen from the first videos' decode and model times",
    )

    def __post_init__(self):
        if self.batch_size < 1:
            raise ConfigError(f"--batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"--num_workers must be >= 0, got {self.num_workers}")


@dataclass
class EngineFlags:
    """Where the per-video work runs: this process and its workers, or a Ray cluster."""

    _argument_group_name = "engine"

    engine: Literal["local", "ray"] = _flag(
        "local",
        "local: this process and its --num_workers decoding processes; ray: a Ray Data pipeline on a Ray cluster "
        "(pip install 'vidcls[ray]').",
    )
    ray_address: str | None = _flag(
        None, "With --engine ray: the cluster to join (auto, HOST:6379, ray://HOST:10001); None: start Ray here."
    )

    def __post_init__(self):
        if self.ray_address and self.engine != "ray":
            raise ConfigError(f"--ray_address {self.ray_address} needs --engine ray")


@dataclass
class ActorFlags:
    """The model copies of ``--engine ray``: predictor actors, each with its own model."""

    _argument_group_name = "predictor actors (--engine ray)"

    concurrency: int = _flag(1, "Predictor actors, one model each; every other CPU decodes videos.")
    num_gpus: float = _flag(0.0, "GPUs per predictor actor (1: one GPU each; 0: the models run on CPUs).")

    def __post_init__(self):
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {self.concurrency}")
        if not self.num_gpus >= 0:
            raise ConfigError(f"--num_gpus must be >= 0, got {self.num_gpus}")

    def check_engine(self, engine: EngineFlags) -> None:
        """Actors exist only on Ray: asking for them with the local engine is a mistake worth saying."""
        if engine.engine != "ray" and (self.concurrency != 1 or self.num_gpus):
            raise ConfigError("--concurrency and --num_gpus set Ray's predictor actors: add --engine ray")
