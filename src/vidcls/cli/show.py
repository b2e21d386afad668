"""Write a GIF of a clip exactly as the model sees it: sampled and resized as in evaluation, before normalising.

The guide un-normalises its float tensors to draw this GIF; vidcls keeps clips uint8 until the model call,
so the GIF shows the very pixels that are normalised and fed to the model.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidcls.cli.flags import command_parser
from vidcls.config import ClipSpec
from vidcls.data.decode import probe
from vidcls.errors import ConfigError

READABLE_SIDE = 224  # px: a small model's 16-64 px clips are enlarged to about this size by default


@dataclass
class ShowArguments:
    _argument_group_name = "show"

    model_dir: str | None = field(
        default=None, metadata={"help": "Output folder of vidcls train (for its clip settings)."}
    )
    reconstruction: str | None = field(
        default=None,
        metadata={
            "help": "Output folder of vidcls pretrain: write a PNG of the clip's frames, the same with the hidden "
            "tubes greyed out, and as the model rebuilds them (default: VIDEO_NAME.clipN.reconstruction.png)."
        },
    )
    output: str | None = field(default=None, metadata={"help": "The GIF to write; default: VIDEO_NAME.clipN.gif here."})
    clip: int = field(default=0, metadata={"help": "Which of the evenly spaced evaluation clips, from 0."})
    scale: int | None = field(
        default=None,
        metadata={"help": f"Enlarge each pixel this many times; default: enough for a {READABLE_SIDE} px short side."},
    )


DEPRECATED_FLAGS = {"--gif": "--output"}


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(__doc__, ShowArguments)
    parser.add_argument("video", metavar="VIDEO", help="A video file.")
    return parser


def save_gif(clip, path: str | Path, frame_ms: float, scale: int = 1) -> Path:
    """uint8 (T, C, H, W) clip -> an endlessly looping GIF, ``frame_ms`` per frame."""
    from PIL import Image

    frames = np.asarray(clip).transpose(0, 2, 3, 1)  # (T, C, H, W) -> (T, H, W, C)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(frame) for frame in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(frame_ms), loop=0)
    return path


def run(args: argparse.Namespace) -> int:
    if (args.model_dir is None) == (args.reconstruction is None):
        raise ConfigError("pass --model_dir (a GIF of a clip) or --reconstruction (a pretrained model's rebuild)")
    spec = ClipSpec.load(args.model_dir or args.reconstruction)
    if args.scale is not None and args.scale < 1:
        raise ConfigError(f"--scale must be >= 1, got {args.scale}")
    from vidcls.data.clips import ClipReader  # torch: loaded only to run, not for --help

    clips = ClipReader(spec).from_file(args.video)  # (N, T, C, H, W) uint8: the clips every command scores
    if not 0 <= args.clip < len(clips):
        raise ConfigError(f"--clip {args.clip}: {args.video} is scored from {len(clips)} clips, 0 to {len(clips) - 1}")
    t, c, h, w = clips[args.clip].shape
    scale = args.scale or max(1, math.ceil(READABLE_SIDE / min(h, w)))
    # Played back at the speed of the video: consecutive frames are sample_rate frames apart.
    if args.reconstruction:
        return show_reconstruction(args, spec, clips[args.clip], scale)
    frame_ms = 1000 * spec.sample_rate / probe(args.video).fps
    gif = args.output or f"{Path(args.video).stem}.clip{args.clip}.gif"
    path = save_gif(clips[args.clip], gif, frame_ms, scale)
    shown = f", shown {scale}x larger" if scale > 1 else ""
    print(f"{path}: clip {args.clip} of {len(clips)}, {t} frames of {w}x{h}{shown}")
    return 0


def show_reconstruction(args: argparse.Namespace, spec: ClipSpec, clip, scale: int) -> int:
    from transformers import VideoMAEForPreTraining

    from vidcls.engine.reconstruct import reconstruct, recorded_mask_ratio, save_grid

    try:
        model = VideoMAEForPreTraining.from_pretrained(args.reconstruction)
    except (OSError, ValueError) as err:
        raise ConfigError(f"--reconstruction {args.reconstruction}: not a vidcls pretrain folder ({err})") from err
    ratio = recorded_mask_ratio(args.reconstruction)
    path = args.output or f"{Path(args.video).stem}.clip{args.clip}.reconstruction.png"
    save_grid(reconstruct(model, spec, clip, ratio), path, scale)
    print(f"{path}: clip {args.clip}; rows: original, {ratio:.0%} of the tubes hidden, reconstructed")
    return 0
