"""A generated dataset in the guide's layout where only motion tells the class.

Each class is a direction of travel (8 compass directions). A video shows a random texture of coloured
blobs drifting in that direction, wrapping around the frame. A group is one texture, and every class has
clips of every group, so appearance carries no class information at all: a model must compare frames to
tell the classes apart (and horizontal flips would swap East and West). Videos are UCF101-like (320x240,
25 fps, MPEG-4 AVI) named ``v_<Class>_gNN_cMM.avi``, and groups never cross splits.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np

# Class name -> angle of travel in degrees (0 = east, counter-clockwise, y pointing up).
DIRECTIONS = {
    "DriftEast": 0,
    "DriftNorthEast": 45,
    "DriftNorth": 90,
    "DriftNorthWest": 135,
    "DriftWest": 180,
    "DriftSouthWest": 225,
    "DriftSouth": 270,
    "DriftSouthEast": 315,
}
WIDTH, HEIGHT, FPS = 320, 240, 25
CLIPS_PER_GROUP = 4


def random_texture(rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A background colour with 20-34 coloured discs and squares: uint8 (H, W, 3).

    Many small blobs give many edges, and edges are where motion shows.
    """
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = rng.integers(0, 256, 3)
    ys, xs = np.mgrid[0:height, 0:width]
    for _ in range(rng.integers(20, 35)):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(8, 30)
        # Distances on the torus, so blobs wrap around the edges like the motion does.
        dx = np.minimum(np.abs(xs - cx), width - np.abs(xs - cx))
        dy = np.minimum(np.abs(ys - cy), height - np.abs(ys - cy))
        mask = (dx**2 + dy**2 < r**2) if rng.random() < 0.5 else ((dx < r) & (dy < r))
        image[mask] = rng.integers(0, 256, 3)
    return image


def write_video(path: Path, frames) -> None:
    """Frames uint8 (H, W, 3) -> an MPEG-4 AVI at 25 fps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 1_500_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def drifting_frames(texture: np.ndarray, angle: float, speed: float, num_frames: int, rng: np.random.Generator):
    """Yield the texture shifted by ``speed`` px per frame along ``angle`` (wrapping around)."""
    vx, vy = speed * math.cos(math.radians(angle)), -speed * math.sin(math.radians(angle))
    x0, y0 = rng.uniform(0, texture.shape[1]), rng.uniform(0, texture.shape[0])
    for t in range(num_frames):
        yield np.roll(texture, (round(y0 + vy * t), round(x0 + vx * t)), axis=(0, 1))


def _write_group(job) -> int:
    """Write every class's clips of one group (one texture); return how many videos were written."""
    split_dir, group, clips, seed, num_frames = job
    texture = random_texture(np.random.default_rng([seed, group]))
    for class_index, (class_name, direction) in enumerate(DIRECTIONS.items()):
        rng = np.random.default_rng([seed, group, class_index])
        for clip in range(1, clips + 1):
            angle = direction + rng.uniform(-10, 10)
            # 3-6 px per frame: 12-24 px between frames sampled every 4th, 2-3 px once scaled to a 32 px model.
            speed = rng.uniform(3.0, 6.0)
            path = Path(split_dir) / class_name / f"v_{class_name}_g{group:02d}_c{clip:02d}.avi"
            write_video(path, drifting_frames(texture, angle, speed, num_frames, rng))
    return clips * len(DIRECTIONS)


def make_motion_dataset(
    output_dir: str | Path,
    *,
    groups: tuple[int, int, int] = (40, 4, 6),
    clips_per_group: int = CLIPS_PER_GROUP,
    seconds: float = 3.2,
    seed: int = 0,
    workers: int = 2,
    progress=None,
) -> Path:
    """Write ``output_dir/{train,val,test}/<Class>/v_<Class>_gNN_cMM.avi``.

    Args:
        groups: groups (textures) in train, val and test; group numbers never repeat across splits.
        clips_per_group: videos per group and class.
        seconds: length of each video.
        progress: optional callable(n) called with the number of videos each finished group wrote.
    """
    output_dir = Path(output_dir)
    num_frames = round(seconds * FPS)
    jobs = []
    first_group = 1
    for split, count in zip(("train", "val", "test"), groups, strict=True):
        for class_name in DIRECTIONS:
            (output_dir / split / class_name).mkdir(parents=True, exist_ok=True)
        jobs += [
            (output_dir / split, g, clips_per_group, seed, num_frames) for g in range(first_group, first_group + count)
        ]
        first_group += count
    with ProcessPoolExecutor(workers) as pool:
        for written in pool.map(_write_group, jobs):
            if progress:
                progress(written)
    return output_dir
