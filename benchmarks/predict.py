"""Videos/s of ``vidcls predict`` over a folder against a loop over ``transformers.pipeline``, same model, and
peak memory on a long generated video.

The model is vidcls's ``tiny`` VideoMAE (32 px, 16 frames every 4th, untrained), saved as ``vidcls train``
saves it, so the pipeline reads the same checkpoint and video processor. With so small a model the figures
measure everything around the model: decoding, sampling, resizing, batching. The pipeline looks at one clip
of 16 frames stretched over each video; vidcls at 4 evenly spaced clips of 16 frames, every 4th frame.
Videos are UCF101-like (320x240, 25 fps, MPEG-4 AVI); the long one lasts 10 minutes. Results: BENCHMARKS.md.

    .venv/bin/python benchmarks/predict.py           # about 1 minute on 2 cores (+1 minute writing data, once)
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
NUM_VIDEOS = 64
VIDEO_SECONDS = 10
LONG_MINUTES = 10
FPS = 25


def _write(job) -> None:
    path, seed, seconds = job
    rng = np.random.default_rng(seed)
    partial = path.with_name(f".partial-{path.name}")  # renamed once complete: a killed run leaves no short video
    write_video(partial, drifting_frames(random_texture(rng), rng.uniform(0, 360), 4.0, seconds * FPS, rng))
    partial.replace(path)


def make_data(root: Path) -> Path:
    """Write what is missing of ``root/videos/*.avi``, ``root/long.avi``, ``root/minute.avi`` and ``root/model``."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(root / "videos" / f"v{i:03d}.avi", i, VIDEO_SECONDS) for i in range(NUM_VIDEOS)]
    jobs += [(root / "long.avi", 999, LONG_MINUTES * 60), (root / "minute.avi", 999, 60)]
    jobs = [job for job in jobs if not job[0].exists()]
    if jobs:
        print(f"writing {len(jobs)} videos to {root} (once) ...", file=sys.stderr)
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_write, jobs))
    if not (root / "model" / "vidcls.json").exists():
        save_model(root / "model")
    return root


def save_model(output_dir: Path) -> None:
    import torch

    from vidcls.models.factory import create_model, resolve_clip_spec, save_trained

    torch.manual_seed(0)
    model = create_model(None, "tiny", {name: i for i, name in enumerate(DIRECTIONS)})
    spec = resolve_clip_spec(model)
    save_trained(model, spec, output_dir)


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def speed_rows(model_dir: Path, videos: list[Path], workers: list[int], batch_size: int, repeats: int) -> list[dict]:
    """Videos/s of a pipeline loop and of everything ``vidcls predict`` does after loading the model (worker
    start-up included), each warmed up on one video first."""
    from transformers import pipeline

    from vidcls.engine.predict import Predictor
    from vidcls.engine.predict_batch import predict_records

    classifier = pipeline("video-classification", model=str(model_dir), device="cpu")
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    classifier(str(videos[0]), top_k=5)  # warm-up
    predictor.predict(videos[0])
    paths = list(map(str, videos))

    def vidcls(n: int) -> None:
        records = list(predict_records(predictor, paths, batch_size=batch_size, num_workers=n))
        if any("error" in r for r in records):
            raise SystemExit(f"vidcls failed on some videos: {[r for r in records if 'error' in r][:3]}")

    rows = [{"side": "pipeline loop", "workers": 0, "run": lambda: [classifier(p, top_k=5) for p in paths]}]
    rows += [{"side": "vidcls predict", "workers": n, "run": lambda n=n: vidcls(n)} for n in workers]
    # Sides take turns, and each keeps its fastest run: on a shared machine the slower runs measure the
    # neighbours, and taking turns spreads their load over both sides.
    times = [[timed(row["run"]) for row in rows] for _ in range(repeats)]
    for row, seconds in zip(rows, zip(*times, strict=True), strict=True):
        del row["run"]
        row.update(videos=len(videos), seconds=round(min(seconds), 2))
    return rows


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def child(mode: str, model_dir: Path, video: Path) -> None:
    """Run one side on one video in this fresh process; print its resident memory before and at its peak."""
    if mode == "pipeline":
        from transformers import pipeline

        classifier = pipeline("video-classification", model=str(model_dir), device="cpu")
        work = lambda: classifier(str(video), top_k=5)  # noqa: E731
    else:
        from vidcls.engine.predict import Predictor

        predictor = Predictor.from_pretrained(model_dir, device="cpu")
        method = predictor.predict if mode == "predict" else predictor.predict_timeline
        work = lambda: method(str(video))  # noqa: E731
    before = _rss_mb()
    with open("/proc/self/clear_refs", "w") as clear:  # Linux: reset the peak (VmHWM) to the current RSS
        clear.write("5")
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    row = {"mode": mode, "video": video.name, "seconds": round(seconds, 2), "rss_mb": round(before)}
    print(json.dumps({**row, "peak_mb": round(_peak_rss_mb())}))


# (side, video): the timeline also runs on a 1-minute video, to show its peak does not grow with the length.
MEMORY_RUNS = [("pipeline", "long.avi"), ("predict", "long.avi"), ("timeline", "minute.avi"), ("timeline", "long.avi")]


def memory_rows(data: Path) -> list[dict]:
    rows = []
    for mode, video in MEMORY_RUNS:
        command = [sys.executable, __file__, "--child", mode, "--video", str(data / video), "--data", str(data)]
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return rows


def report(speed: list[dict], memory: list[dict], long_video: Path) -> None:
    base = speed[0]["videos"] / speed[0]["seconds"]
    header = f"{'side':<16} {'workers':>7} {'videos':>6} {'seconds':>8} {'videos/s':>9} {'ratio':>6}"
    print(f"{header}  frames seen per video")
    for row in speed:
        rate = row["videos"] / row["seconds"]
        seen = "16 (1 clip over the video)" if row["side"].startswith("pipeline") else "64 (4 clips of 16)"
        cells = f"{row['side']:<16} {row['workers']:>7} {row['videos']:>6} {row['seconds']:>8.2f} {rate:>9.2f}"
        print(f"{cells} {rate / base:>5.2f}x  {seen}")
    if not memory:
        return
    from vidcls.data.decode import probe

    info = probe(long_video)
    full = info.num_frames * info.width * info.height * 3 / 2**20
    small = info.num_frames * 32 * 43 * 3 / 2**20
    print(f"\nlong.avi: {info.duration / 60:.0f} min, {info.num_frames} frames of {info.width}x{info.height} "
          f"(all frames: {full:.0f} MB decoded, {small:.0f} MB at the model's 32 px)")  # fmt: skip
    print(f"{'run':<26} {'video':<11} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9} {'added':>6}")
    names = {"pipeline": "pipeline (1 clip)", "predict": "vidcls predict (4 clips)", "timeline": "vidcls --timeline"}
    for row in memory:
        added = row["peak_mb"] - row["rss_mb"]
        cells = f"{names[row['mode']]:<26} {row['video']:<11} {row['seconds']:>8.2f} {row['rss_mb']:>8} MB"
        print(f"{cells} {row['peak_mb']:>6} MB {added:>3} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="where the generated videos and model go")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="vidcls decoding workers to time")
    parser.add_argument("--batch_size", type=int, default=32, help="vidcls clips per model call")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side; the fastest counts")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 videos once, no long-video memory runs")
    parser.add_argument("--child", choices=("pipeline", "predict", "timeline"), help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = make_data(args.data)
    if args.child:
        child(args.child, data / "model", args.video)
        return 0
    import torch

    videos = sorted((data / "videos").glob("*.avi"))[: 8 if args.quick else None]
    print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}", file=sys.stderr)
    speed = speed_rows(data / "model", videos, args.workers, args.batch_size, 1 if args.quick else args.repeats)
    memory = [] if args.quick else memory_rows(data)
    print(json.dumps({"speed": speed, "memory": memory}), file=sys.stderr)
    report(speed, memory, data / "long.avi")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
