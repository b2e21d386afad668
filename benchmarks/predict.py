"""Clips/s and videos/s of ``vidcls predict`` over a folder against a loop over ``transformers.pipeline``, same
checkpoint, at the guide's 224 px, and peak memory on a long generated video.

Headline model: vidcls's ``tiny`` VideoMAE at 224 px in 16 px patches (16 frames in tubelets of 2: 1568 tokens,
4 layers of width 128, random weights), saved as ``vidcls train`` saves it, so the pipeline reads the same
checkpoint and video processor. The pipeline looks at one clip of 16 frames stretched over each video; vidcls at
``--clips`` (default ``EvalViews.clips``) evenly spaced clips of 16 frames, every 4th. Per clip compares clips/s
(vidcls's clips per video x videos/s against the pipeline's 1 x videos/s); per video compares videos/s as they
come. The ``tiny`` preset at 32 px (8 px patches) gives the "loader-bound" rows, where the model is nearly free.
Videos are UCF101-like (320x240, 25 fps, MPEG-4 AVI, 10 s); the long one lasts 10 minutes.

Sides take turns within each round (the order reversed every other round), each warmed up first; the median
of the rounds counts. Results: BENCHMARKS.md (Prediction).

    PYTHONPATH=src .venv/bin/python benchmarks/predict.py           # about 5 minutes on 2 cores (+1 writing data)
    PYTHONPATH=src .venv/bin/python benchmarks/predict.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from results import Result, write

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
    """Write what is missing of ``root/videos/*.avi``, ``root/long.avi``, ``root/minute.avi``, ``root/model``
    (32 px) and ``root/model_224``."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(root / "videos" / f"v{i:03d}.avi", i, VIDEO_SECONDS) for i in range(NUM_VIDEOS)]
    jobs += [(root / "long.avi", 999, LONG_MINUTES * 60), (root / "minute.avi", 999, 60)]
    jobs = [job for job in jobs if not job[0].exists()]
    if jobs:
        print(f"writing {len(jobs)} videos to {root} (once) ...", file=sys.stderr)
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_write, jobs))
    for name, size in (("model", 32), ("model_224", 224)):
        if not (root / name / "vidcls.json").exists():
            save_model(root / name, image_size=size)
    return root


def save_model(output_dir: Path, image_size: int = 32, base: bool = False) -> Path:
    """The ``tiny`` VideoMAE (random weights) at ``image_size``: 32 px in 8 px patches, or in 16 px patches (the
    guide's 224 px: 8 x 14 x 14 tokens); with ``base`` VideoMAE-base (224 px, 12 layers of width 768, 86 M
    parameters, random weights). Saved as vidcls train saves it."""
    import torch
    from transformers import VideoMAEConfig

    from vidcls.models.factory import create_model, resolve_clip_spec, save_trained, tiny_videomae_config

    torch.manual_seed(0)
    config = VideoMAEConfig(use_mean_pooling=True) if base else tiny_videomae_config()  # the default: base
    if image_size != config.image_size:
        config.image_size, config.patch_size = image_size, 16
    output_dir.mkdir(parents=True, exist_ok=True)
    config_path = output_dir.parent / f"config_{'base' if base else image_size}.json"
    config.to_json_file(config_path)
    model = create_model(None, str(config_path), {name: i for i, name in enumerate(DIRECTIONS)})
    return save_trained(model, resolve_clip_spec(model), output_dir)


def vidcls_side(predictor, paths: list[str], batch_size: int, workers: int | None, read_ahead: bool = True):
    """What ``vidcls predict FOLDER`` runs once the model is loaded (worker start-up included)."""
    from vidcls.engine import scoring
    from vidcls.engine.predict_batch import predict_records

    def run() -> None:
        original = scoring.read_ahead
        if not read_ahead:  # measure what overlapping decoding with the model call gains
            scoring.read_ahead = lambda items: items
        chosen = ChosenWorkers()
        scoring.logger.setLevel(logging.INFO)  # its choice is logged at INFO
        scoring.logger.addHandler(chosen)
        try:
            records = list(predict_records(predictor, paths, batch_size=batch_size, num_workers=workers))
        finally:
            scoring.read_ahead = original
            scoring.logger.removeHandler(chosen)
        run.chosen.extend(chosen.workers)
        if any("error" in r for r in records):
            raise SystemExit(f"vidcls failed on some videos: {[r for r in records if 'error' in r][:3]}")

    run.chosen = []  # the workers --num_workers unset chose, run after run
    return run


class ChosenWorkers(logging.Handler):
    """Keeps the decoding workers ``score_videos`` chose (its log line ends with the count)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.workers = []

    def emit(self, record: logging.LogRecord) -> None:
        if "decoding workers" in record.msg:
            self.workers.append(record.args[-1])


def speed_rows(
    model_dir: Path, videos: list[Path], batch_size: int, rounds: int, read_ahead: bool, only_default: bool = False
) -> list[dict]:
    """Median seconds of each side over ``rounds`` rounds, sides taking turns, each warmed up on one video."""
    from transformers import pipeline

    from vidcls.engine.predict import Predictor

    if not videos:  # --videos 0: these rows are not wanted
        return []
    classifier = pipeline("video-classification", model=str(model_dir), device="cpu")
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    paths = list(map(str, videos))
    clips = predictor.reader.views.clips
    sides = [
        ("pipeline loop", "0", 1, lambda: [classifier(p, top_k=5) for p in paths]),
        ("vidcls predict", "default", clips, vidcls_side(predictor, paths, batch_size, None)),
        ("vidcls predict", "0", clips, vidcls_side(predictor, paths, batch_size, 0)),
    ]
    if only_default:
        del sides[2:]
    elif read_ahead:
        sides.append(("vidcls, no read-ahead", "0", clips, vidcls_side(predictor, paths, batch_size, 0, False)))
    classifier(paths[0], top_k=5)  # warm-up
    vidcls_side(predictor, paths[:2], batch_size, 0)()
    seconds = [[] for _ in sides]
    for round_ in range(rounds):
        order = list(range(len(sides)))
        for index in order if round_ % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            sides[index][3]()
            seconds[index].append(time.perf_counter() - started)
    return [
        {"side": side, "workers": workers, "chose": getattr(run, "chosen", []), "clips": clips, "videos": len(videos),
         "seconds": statistics.median(times), "rounds": [round(t, 2) for t in times]}
        for (side, workers, clips, run), times in zip(sides, seconds, strict=True)
    ]  # fmt: skip


def chose(row: dict) -> str:
    """The workers the default chose in each timed run, e.g. "chose 0, 0, 2"; "" for a fixed count."""
    return f"chose {', '.join(map(str, row['chose']))}" if row["chose"] else ""


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


def speed_table(title: str, speed: list[dict]) -> None:
    if not speed:
        return
    base = speed[0]["videos"] / speed[0]["seconds"]
    print(f"\n{title}")
    print(f"{'side':<22} {'workers':>20} {'clips':>5} {'videos/s':>9} {'clips/s':>8} {'per video':>9} {'per clip':>8}")
    for row in speed:
        rate = row["videos"] / row["seconds"]
        workers = f"{row['workers']} ({chose(row)})" if row["chose"] else row["workers"]
        cells = f"{row['side']:<22} {workers:>20} {row['clips']:>5} {rate:>9.2f} {rate * row['clips']:>8.2f}"
        print(f"{cells} {rate / base:>8.2f}x {rate * row['clips'] / base:>7.2f}x   rounds {row['rounds']}")


def headline(speed: list[dict], size: str, note: str, target: float | None) -> list[Result]:
    """Per clip (``target``: the issue's 1.2x, for the 224 px vidcls sides) and per video against the pipeline."""
    if not speed:
        return []
    pipeline_rate = speed[0]["videos"] / speed[0]["seconds"]
    rows = []
    for row in speed[1:]:
        rate = row["videos"] / row["seconds"]
        side = f"{row['side']}, {row['workers']} workers, {size}"
        aim = target if row["side"] == "vidcls predict" else None  # no read-ahead: a diagnosis, not a product
        remark = "; ".join(filter(None, [note, chose(row)]))
        rows.append(Result("predict", f"per clip: {side}", round(rate * row["clips"], 2), "clips/s",
                           "pipeline loop (1 clip per video)", round(rate * row["clips"] / pipeline_rate, 3), aim,
                           remark))  # fmt: skip
        rows.append(Result("predict", f"per video ({row['clips']} clips): {side}", round(rate, 2), "videos/s",
                           "pipeline loop (1 clip per video)", round(rate / pipeline_rate, 3), None,
                           remark))  # fmt: skip
    return rows


def memory_table(memory: list[dict], long_video: Path) -> None:
    from vidcls.data.decode import probe

    info = probe(long_video)
    full = info.num_frames * info.width * info.height * 3 / 2**20
    small = info.num_frames * 32 * 43 * 3 / 2**20
    print(f"\nlong.avi: {info.duration / 60:.0f} min, {info.num_frames} frames of {info.width}x{info.height} "
          f"(all frames: {full:.0f} MB decoded, {small:.0f} MB at the model's 32 px)")  # fmt: skip
    print(f"{'run':<26} {'video':<11} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9} {'added':>6}")
    names = {"pipeline": "pipeline (1 clip)", "predict": "vidcls predict", "timeline": "vidcls --timeline"}
    for row in memory:
        added = row["peak_mb"] - row["rss_mb"]
        cells = f"{names[row['mode']]:<26} {row['video']:<11} {row['seconds']:>8.2f} {row['rss_mb']:>8} MB"
        print(f"{cells} {row['peak_mb']:>6} MB {added:>3} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="where the generated videos and models go")
    parser.add_argument("--videos", type=int, default=16, help="videos per timed run at 224 px (0: none)")
    parser.add_argument("--videos_32", type=int, default=64, help="videos per timed run at 32 px (0: none)")
    parser.add_argument("--batch_size", type=int, default=16, help="vidcls clips per model call (predict's default)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, sides taking turns; the median counts")
    parser.add_argument("--base", type=int, default=0, help="videos per timed run with VideoMAE-base (0: none)")
    parser.add_argument("--no_memory", action="store_true", help="skip the peak memory runs on the 10-minute video")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 videos at 224 px, 4 at 32 px, 1 round")
    parser.add_argument("--json", type=Path, help="write the headline rows here (benchmarks/results.py)")
    parser.add_argument("--child", choices=("pipeline", "predict", "timeline"), help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = make_data(args.data)
    if args.child:
        child(args.child, data / "model", args.video)
        return 0
    import torch

    videos = sorted((data / "videos").glob("*.avi"))
    count, count_32, rounds = (2, 4, 1) if args.quick else (args.videos, args.videos_32, args.rounds)
    print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}", file=sys.stderr)
    speed = speed_rows(data / "model_224", videos[:count], args.batch_size, rounds, read_ahead=True)
    speed_32 = speed_rows(data / "model", videos[:count_32], args.batch_size, rounds, read_ahead=False)
    speed_base = []
    if args.base:
        if not (data / "model_base" / "vidcls.json").exists():
            save_model(data / "model_base", image_size=224, base=True)
        speed_base = speed_rows(data / "model_base", videos[: args.base], args.batch_size, rounds, False, True)
    memory = memory_rows(data) if not (args.no_memory or args.quick) else []
    print(json.dumps({"speed_224": speed, "speed_32": speed_32, "speed_base": speed_base, "memory": memory}),
          file=sys.stderr)  # fmt: skip
    speed_table(f"224 px, tiny VideoMAE of width 128 (model-bound), {count} videos of 10 s", speed)
    speed_table(f"32 px, tiny VideoMAE (loader-bound), {count_32} videos of 10 s", speed_32)
    if speed_base:
        speed_table(f"224 px, VideoMAE-base (model-bound), {args.base} videos of 10 s", speed_base)
    if memory:
        memory_table(memory, data / "long.avi")
    results = headline(speed, "224 px", "tiny VideoMAE of width 128, random weights", 1.2)
    results += headline(speed_base, "224 px, VideoMAE-base", "VideoMAE-base, random weights", 1.2)
    results += headline(speed_32, "32 px", "loader-bound: 32 px model", None)
    write(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
