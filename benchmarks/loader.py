"""Clips/s of vidcls's train and eval loaders against the Hugging Face guide's PyTorchVideo loader.

Both sides read the same UCF101-like AVIs (320x240, 25 fps, 7 s, MPEG-4), batch 8 clips of 16 frames at
224 px and end with float normalised (B, T, C, 224, 224) batches, with 0 and 2 DataLoader workers. The guide
runs in its own venv (``benchmarks/.guide-venv``, built here on first use) through ``guide_loader.py``.

    .venv/bin/python benchmarks/loader.py           # or: make bench-loader
    .venv/bin/python benchmarks/loader.py --quick   # smoke run
    .venv/bin/python benchmarks/loader.py --parts cache --json cache.json   # the frame cache's epochs only

The cache rows (``cache_epochs.py``) time whole epochs with and without ``--cache_dir``'s ``FrameCache``:
the first (cold, filling) and the second (warm).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from cache_epochs import CACHE_FOOTER, CACHE_HEADER, VARIANTS, cache_report, clip_costs, measure_cache, print_clip_costs
from results import Result, write
from timing import measure

from vidcls.config import ClipSpec
from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import load_split
from vidcls.data.synthetic import drifting_frames, random_texture, write_video
from vidcls.engine.batching import ClipCollator, prepare_pixels

HERE = Path(__file__).resolve().parent
GUIDE_VENV = HERE / ".guide-venv"
GUIDE_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "pytorchvideo==0.1.5", "av"]
# Class -> direction of travel; 2 groups x 4 clips per class in train, 1 group x 4 in val: 32 and 16 videos.
CLASSES = {"DriftEast": 0, "DriftNorth": 90, "DriftWest": 180, "DriftSouth": 270}
SPLIT_GROUPS = {"train": (1, 2), "val": (3,)}
CLIPS_PER_GROUP = 4
VIDEO_FRAMES = 175  # 7 s at 25 fps, about UCF101's average length
BATCH_SIZE = 8
CACHE_BYTES = 8 * 2**30  # an absolute cap far above what these 48 videos need (the 10x ratio bound applies)


def make_videos(root: Path) -> Path:
    """Write ``root/{train,val}/<Class>/v_<Class>_gNN_cMM.avi`` once (a marker file says it is complete)."""
    marker = root / ".complete"
    if marker.exists():
        return root
    print(f"writing videos to {root} (once) ...", file=sys.stderr)
    for split, groups in SPLIT_GROUPS.items():
        for class_index, (name, angle) in enumerate(CLASSES.items()):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for group in groups:
                texture = random_texture(np.random.default_rng([group]))
                for clip in range(1, CLIPS_PER_GROUP + 1):
                    rng = np.random.default_rng([group, class_index, clip])
                    path = root / split / name / f"v_{name}_g{group:02d}_c{clip:02d}.avi"
                    write_video(path, drifting_frames(texture, angle, rng.uniform(3, 6), VIDEO_FRAMES, rng))
    marker.touch()
    return root


def patch_functional_tensor(venv: Path) -> None:
    """The well-known PyTorchVideo 0.1.5 fix: ``torchvision.transforms.functional_tensor`` is gone from
    torchvision (0.17+); the same ``affine`` lives in ``torchvision.transforms.functional``. Idempotent:
    a patched file no longer contains the old import."""
    old = "import torchvision.transforms.functional_tensor as F_t"
    for path in venv.glob("lib/python*/site-packages/pytorchvideo/transforms/augmentations.py"):
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, "import torchvision.transforms.functional as F_t"))


def ensure_guide_venv() -> Path:
    """A clean venv with the guide's stack (torch/torchvision from this machine's disk, the rest from PyPI)."""
    python = GUIDE_VENV / "bin" / "python"
    stamp = GUIDE_VENV / ".installed"
    if not stamp.exists():
        print(f"building {GUIDE_VENV} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(GUIDE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *GUIDE_PACKAGES], check=True)
        stamp.touch()
    patch_functional_tensor(GUIDE_VENV)
    return python


def guide_row(python: Path, data: Path, mode: str, workers: int, clips: int) -> dict:
    """One row of the guide's loader, timed in its own venv."""
    command = [str(python), str(HERE / "guide_loader.py"), "--data", str(data), "--clips", str(clips)]
    command += ["--modes", mode, "--workers", str(workers)]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the guide's loader failed (exit {result.returncode}); see its output above")
    return json.loads(result.stdout.strip().splitlines()[-1])[0]


def vidcls_loader(data: Path, mode: str, workers: int, cache=None) -> torch.utils.data.DataLoader:
    """The vidcls loader of ``mode``'s split at 224 px (batch 8, persistent workers), with ``cache`` if given."""
    records, _ = load_split(data, "train" if mode == "train" else "val")
    extra = {"cache": cache} if cache is not None else {}
    dataset = ClipDataset(records, ClipSpec(image_size=224), train=mode == "train", **extra)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=mode == "train",
        num_workers=workers,
        collate_fn=ClipCollator("pixel_values"),
        persistent_workers=workers > 0,  # steady state, as on the guide's side
    )


def time_vidcls(loader, clips: int) -> dict:
    """Clips/s to normalised floats on this CPU, and of the uint8 batches themselves (what a training step on
    a GPU receives: it normalises them there, see ``engine/batching.py``)."""
    spec = loader.dataset.spec
    timed = measure(loader, clips, lambda batch: prepare_pixels(batch, "pixel_values", spec))
    timed["uint8_clips_per_s"] = measure(loader, clips, dtype=torch.uint8)["clips_per_s"]
    return timed


def filled_cache(data: Path):
    """vidcls's decoded-frame cache, filled by one untimed pass over both splits; None where it is missing."""
    try:
        from vidcls.data.cache import FrameCache
    except ImportError:
        return None
    if "cache" not in inspect.signature(ClipDataset).parameters:
        return None
    cache_dir = data / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)  # a fresh fill each run
    cache = FrameCache(cache_dir, max_bytes=CACHE_BYTES)
    for mode in ("train", "eval"):
        for _ in vidcls_loader(data, mode, 0, cache=cache):
            pass
    print(f"cache: {cache.summary()}", file=sys.stderr)
    return cache


def measure_row(python: Path, data: Path, mode: str, workers: int, args, cache) -> dict:
    """Guide, vidcls and cached vidcls back to back, so they share whatever else loads the CPU then."""
    row = {"mode": mode, "workers": workers, "load_before": os.getloadavg()[0]}
    row["guide"] = guide_row(python, data, mode, workers, args.guide_clips)
    row["vidcls"] = time_vidcls(vidcls_loader(data, mode, workers), args.vidcls_clips)
    if cache is not None:
        row["cached"] = time_vidcls(vidcls_loader(data, mode, workers, cache=cache), args.cache_clips)
    row["load_after"] = os.getloadavg()[0]
    print(json.dumps(row), file=sys.stderr)
    return row


# Columns after the guide's: (label, row key, field).
COLUMNS = [
    ("vidcls", "vidcls", "clips_per_s"),
    ("uint8", "vidcls", "uint8_clips_per_s"),
    ("cached", "cached", "clips_per_s"),
    ("c-uint8", "cached", "uint8_clips_per_s"),
]
TARGETS = {"vidcls": 5, "cached": 20}


def report(rows: list[dict]) -> None:
    header = f"{'loader':<6} {'workers':>7} {'guide':>8}"
    header += "".join(f" {label:>8} {'ratio':>6}" for label, *_ in COLUMNS)
    print(header + f" {'load':>5}\n" + "-" * (len(header) + 6))
    ratios: dict[str, list[float]] = {label: [] for label, *_ in COLUMNS}
    for row in rows:
        base = row["guide"]["clips_per_s"]
        cells = f"{row['mode']:<6} {row['workers']:>7} {base:>8.1f}"
        for label, key, field in COLUMNS:
            if key in row:
                rate = row[key][field]
                ratios[label].append(rate / base)
                cells += f" {rate:>8.1f} {rate / base:>5.1f}x"
        print(f"{cells} {row['load_before']:>5.1f}")
    print("clips/s; ratio = vidcls / guide; vidcls, cached: to normalised float batches on this CPU, as the guide's")
    print("loader ends; uint8, c-uint8: the loader's own uint8 batches, which a training step on a GPU normalises")
    print("there; load = 1-minute load average before the row, on all the machine's CPUs")
    for label, key, _ in COLUMNS:
        if ratios[label]:
            target = TARGETS[key]
            verdict = "met" if min(ratios[label]) >= target else "NOT met"
            print(f"{label}: target >= {target}x {verdict} (worst {min(ratios[label]):.1f}x)")


def guide_results(rows: list[dict]) -> list[Result]:
    """The headline rows of the guide comparison (ratios to the guide's loader at its own worker count)."""
    results = []
    for row in rows:
        base = row["guide"]["clips_per_s"]
        for label, key, field in COLUMNS:
            if key in row:
                rate = row[key][field]
                where = f"{row['mode']} loader, 224 px, 16 frames, {row['workers']} workers"
                baseline = f"guide PyTorchVideo loader, {row['workers']} workers"
                ratio, target = rate / base, TARGETS[key]
                results.append(Result("loader", f"{label}, {where}", rate, "clips/s", baseline, ratio, target))
    return results


def cache_rows(data: Path, workers: list[int], rounds: int, extra_videos: list[Path]) -> list[Result]:
    """Where a clip's time goes (these videos and ``extra_videos``), then cold and warm epochs with the frame cache
    against the same loader without it; prints two tables."""
    from vidcls.data.cache import FrameCache

    # One torch thread, as in each DataLoader worker: with 0 workers the clips are cropped in this process, and
    # two threads on two shared cores made torch's resize and stack 10-30x slower whenever another job ran.
    torch.set_num_threads(1)
    videos = [*sorted(data.glob("train/*/*.avi"))[:2], *extra_videos]
    clip_costs(videos[0], data / "cache-costs", repeats=1)  # warm-up: imports, FFmpeg's and JPEG's first calls
    print_clip_costs([clip_costs(video, data / "cache-costs") for video in videos])
    print(CACHE_HEADER + "\n" + "-" * len(CACHE_HEADER))
    results = []
    for mode, codec, options in VARIANTS:
        split = "train" if mode == "train" else "val"
        source_bytes = sum(p.stat().st_size for p in (data / split).rglob("*.avi"))
        for n in workers:
            timed = measure_cache(
                functools.partial(vidcls_loader, data, mode, n),
                functools.partial(FrameCache, data / "cache-epochs", **options),
                rounds,
            )
            print(f"{mode} {codec} {n} workers: {timed}", file=sys.stderr)
            line, rows = cache_report(mode, codec, n, timed, source_bytes)
            print(line)
            results += rows
    print(CACHE_FOOTER)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE / ".data" / "loader", help="where the generated videos go")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to compare")
    parser.add_argument("--guide_clips", type=int, default=64, help="clips timed per guide row")
    parser.add_argument("--vidcls_clips", type=int, default=256, help="clips timed per vidcls row")
    parser.add_argument("--cache_clips", type=int, default=512, help="clips timed per cached vidcls row")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the cache rows")
    parser.add_argument("--cache_videos", type=Path, nargs="*", default=[], help="more videos to cost a clip of")
    parser.add_argument("--parts", nargs="+", choices=["guide", "cache"], default=["guide", "cache"])
    parser.add_argument("--json", type=Path, help="write the headline rows here (benchmarks/results.py)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 16 clips per row, 1 cache round")
    args = parser.parse_args(argv)
    if args.quick:
        args.guide_clips = args.vidcls_clips = args.cache_clips = 16
        args.rounds = 1
    data = make_videos(args.data)
    print(f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}", file=sys.stderr)
    results = []
    if "guide" in args.parts:
        python = ensure_guide_venv()
        cache = filled_cache(data)
        rows = [measure_row(python, data, mode, n, args, cache) for mode in ("train", "eval") for n in args.workers]
        report(rows)
        results += guide_results(rows)
    if "cache" in args.parts:
        results += cache_rows(data, args.workers, args.rounds, args.cache_videos)
    write(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
