"""Videos/s of ``vidcls predict`` over a folder against a loop over ``transformers.pipeline``, same model, and
peak memory on a long generated video.

The model is vidcls's ``tiny`` VideoMAE (32 px, 16 frames every 4th, untrained), saved as ``vidcls train``
saves it, so the pipeline reads the same checkpoint and video processor. With so small a model the figures
measure everything around the model: decoding, sampling, resizing, batching. The pipeline looks at one clip
of 16 frames stretched over each video; vidcls at 4 clips of 16 consecutive-every-4th frames covering it.
Videos are UCF101-like (320x240, 25 fps, MPEG-4 AVI); the long one lasts 10 minutes.

    .venv/bin/python benchmarks/predict.py           # about 3 minutes on 2 cores, data written once
    .venv/bin/python benchmarks/predict.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vidcls.data.synthetic import DIRECTIONS, drifting_frames, random_texture, write_video

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "predict"  # benchmarks/.data/ is gitignored
NUM_VIDEOS = 32
VIDEO_SECONDS = 10
LONG_MINUTES = 10
FPS = 25


def _write(job) -> None:
    path, seed, seconds = job
    rng = np.random.default_rng(seed)
    write_video(path, drifting_frames(random_texture(rng), rng.uniform(0, 360), 4.0, seconds * FPS, rng))


def make_data(root: Path) -> Path:
    """``root/videos/*.avi``, ``root/long.avi`` and ``root/model`` (once: a marker says they are complete)."""
    if (root / ".complete").exists():
        return root
    print(f"writing videos and a model to {root} (once) ...", file=sys.stderr)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(root / "videos" / f"v{i:03d}.avi", i, VIDEO_SECONDS) for i in range(NUM_VIDEOS)]
    jobs.append((root / "long.avi", 999, LONG_MINUTES * 60))
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write, jobs))
    save_model(root / "model")
    (root / ".complete").touch()
    return root


def save_model(output_dir: Path) -> None:
    import torch

    from vidcls.models.factory import create_model, resolve_clip_spec, save_processor

    torch.manual_seed(0)
    model = create_model(None, "tiny", {name: i for i, name in enumerate(DIRECTIONS)})
    spec = resolve_clip_spec(model)
    model.save_pretrained(output_dir)
    save_processor(model, spec, output_dir)
    spec.save(output_dir)


def time_pipeline(model_dir: Path, videos: list[Path]) -> dict:
    from transformers import pipeline

    classifier = pipeline("video-classification", model=str(model_dir), device="cpu")
    classifier(str(videos[0]), top_k=5)  # warm-up
    start = time.perf_counter()
    for video in videos:
        classifier(str(video), top_k=5)
    seconds = time.perf_counter() - start
    return {"side": "pipeline loop", "workers": 0, "videos": len(videos), "seconds": round(seconds, 2)}


def time_vidcls(model_dir: Path, videos: list[Path], workers: int, batch_size: int) -> dict:
    """Everything ``vidcls predict`` does after loading the model, worker start-up included."""
    from vidcls.engine.predict import Predictor
    from vidcls.engine.predict_batch import predict_records

    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    predictor.predict(videos[0])  # warm-up
    start = time.perf_counter()
    records = list(predict_records(predictor, list(map(str, videos)), batch_size=batch_size, num_workers=workers))
    seconds = time.perf_counter() - start
    if any("error" in r for r in records):
        raise SystemExit(f"vidcls failed on some videos: {[r for r in records if 'error' in r][:3]}")
    return {"side": "vidcls predict", "workers": workers, "videos": len(videos), "seconds": round(seconds, 2)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def child(mode: str, model_dir: Path, video: Path) -> None:
    """Run one side on the long video in this fresh process; print the RSS it added at its peak."""
    if mode == "pipeline":
        from transformers import pipeline

        classifier = pipeline("video-classification", model=str(model_dir), device="cpu")
        work = lambda: classifier(str(video), top_k=5)  # noqa: E731
    else:
        from vidcls.engine.predict import Predictor

        predictor = Predictor.from_pretrained(model_dir, device="cpu")
        work = predictor.predict if mode == "predict" else predictor.predict_timeline
        work = (lambda w: lambda: w(str(video)))(work)
    before = _rss_mb()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(json.dumps({"mode": mode, "seconds": round(seconds, 2), "rss_mb": round(before), "peak_mb": round(peak)}))


def memory_rows(model_dir: Path, video: Path) -> list[dict]:
    rows = []
    for mode in ("pipeline", "predict", "timeline"):
        command = [sys.executable, __file__, "--child", mode, "--data", str(model_dir.parent)]
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return rows


def report(speed: list[dict], memory: list[dict], long_video: Path) -> None:
    base = speed[0]["videos"] / speed[0]["seconds"]
    print(f"{'side':<16} {'workers':>7} {'videos':>6} {'seconds':>8} {'videos/s':>9} {'ratio':>6}  frames seen per video")
    for row in speed:
        rate = row["videos"] / row["seconds"]
        seen = "16 (1 clip over the video)" if row["side"].startswith("pipeline") else "64 (4 clips of 16)"
        cells = f"{row['side']:<16} {row['workers']:>7} {row['videos']:>6} {row['seconds']:>8.2f} {rate:>9.2f}"
        print(f"{cells} {rate / base:>5.2f}x  {seen}")
    from vidcls.data.decode import probe

    info = probe(long_video)
    full = info.num_frames * info.width * info.height * 3 / 2**20
    small = info.num_frames * 32 * 43 * 3 / 2**20
    print(f"\nlong video: {info.duration / 60:.0f} min, {info.num_frames} frames of {info.width}x{info.height} "
          f"(all frames: {full:.0f} MB decoded, {small:.0f} MB at the model's 32 px)")  # fmt: skip
    print(f"{'run':<26} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9} {'added':>6}")
    names = {"pipeline": "pipeline (1 clip)", "predict": "vidcls predict (4 clips)", "timeline": "vidcls --timeline"}
    for row in memory:
        added = row["peak_mb"] - row["rss_mb"]
        print(
            f"{names[row['mode']]:<26} {row['seconds']:>8.2f} {row['rss_mb']:>8} MB {row['peak_mb']:>6} MB {added:>3} MB"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="where the generated videos and model go")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="vidcls decoding workers to time")
    parser.add_argument("--batch_size", type=int, default=32, help="vidcls clips per model call")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 videos, no long-video memory runs")
    parser.add_argument("--child", choices=("pipeline", "predict", "timeline"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = make_data(args.data)
    if args.child:
        child(args.child, data / "model", data / "long.avi")
        return 0
    import torch

    videos = sorted((data / "videos").glob("*.avi"))[: 8 if args.quick else None]
    print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}", file=sys.stderr)
    speed = [time_pipeline(data / "model", videos)]
    speed += [time_vidcls(data / "model", videos, n, args.batch_size) for n in args.workers]
    memory = [] if args.quick else memory_rows(data / "model", data / "long.avi")
    print(json.dumps({"speed": speed, "memory": memory}), file=sys.stderr)
    report(speed, memory, data / "long.avi")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
