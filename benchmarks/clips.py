"""How many clips per video: the per-video accuracy each extra clip gains on a held-out split, and what it costs.

A ``tiny`` VideoMAE (32 px) is trained from scratch on the generated motion dataset (class = direction of
travel; textures never cross splits), then its test split is evaluated with ``--clips`` 1, 2, 3, 4, 6, 8 (1 crop).
The cost of each is videos/s of ``vidcls predict`` (``predict_records``, default workers) at the guide's 224 px:
the ``tiny`` preset of width 128 in 16 px patches (benchmarks/predict.py's ``model_224``), on the same test videos,
settings taking turns, the median of the rounds. The default clips is the smallest count within ``--tolerance``
points of the best accuracy. Results: BENCHMARKS.md (Prediction).

    PYTHONPATH=src nice .venv/bin/python benchmarks/clips.py --lock /work/bench.lock   # about 8 minutes on 2 cores
    PYTHONPATH=src .venv/bin/python benchmarks/clips.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import statistics
import sys
import time
from pathlib import Path

from predict import DATA, make_data, save_model  # benchmarks/predict.py (this script's folder)
from results import Result, write

from vidcls.cli import main as vidcls
from vidcls.config import EvalViews
from vidcls.data.synthetic import make_motion_dataset
from vidcls.engine.evaluate import evaluate
from vidcls.engine.predict import Predictor
from vidcls.engine.predict_batch import predict_records

HERE = Path(__file__).resolve().parent
MOTION = HERE / ".data" / "clips"  # benchmarks/.data/ is gitignored
CLIPS = (1, 2, 3, 4, 6, 8)
GROUPS = (10, 2, 8)  # textures in train, val, test: 32 videos each (8 directions x 4)
SECONDS = 6.4  # about UCF101's median length: 160 frames, room for 8 distinct 64-frame clips


def motion_data(root: Path, groups: tuple[int, int, int], seconds: float) -> Path:
    marker = root / ".complete"
    if not (marker.exists() and marker.read_text() == f"{groups} {seconds}"):
        print(f"writing the motion dataset to {root} (once) ...", file=sys.stderr)
        make_motion_dataset(root, groups=groups, seconds=seconds)
        marker.write_text(f"{groups} {seconds}")
    return root


def train(data: Path, output_dir: Path, epochs: float, seed: int) -> Path:
    """The demo's recipe (tiny VideoMAE from scratch, no flips: they swap East and West), no evaluation."""
    code = vidcls(
        ["train", "--data_dir", str(data), "--config_name", "tiny", "--hflip", "false", "--output_dir", str(output_dir),
         "--num_train_epochs", str(epochs), "--seed", str(seed), "--learning_rate", "1e-3", "--weight_decay", "0.05",
         "--per_device_train_batch_size", "32", "--lr_scheduler_type", "cosine", "--eval_strategy", "no",
         "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none", "--overwrite_output_dir"]
    )  # fmt: skip
    if code != 0:
        raise SystemExit(f"training failed ({code})")
    return output_dir


def accuracies(model_dir: Path, data: Path) -> dict[int, dict]:
    """Per-video and per-clip accuracy on the test split for each clips count."""
    rows = {}
    for clips in CLIPS:
        report = evaluate(model_dir, data, "test", views=EvalViews(clips), output_file=model_dir / f"eval_{clips}.json")
        rows[clips] = {"accuracy": report["accuracy"], "clip_accuracy": report["clip_accuracy"],
                       "videos": report["num_videos"], "views": report["num_clips"]}  # fmt: skip
    return rows


def speeds(model_dir: Path, videos: list[str], rounds: int) -> dict[int, float]:
    """Median videos/s of ``predict_records`` (default workers) for each clips count, counts taking turns."""
    predictors = {clips: Predictor.from_pretrained(model_dir, device="cpu", views=EvalViews(clips)) for clips in CLIPS}
    for predictor in predictors.values():  # warm-up
        list(predict_records(predictor, videos[:1], num_workers=0))
    seconds = {clips: [] for clips in CLIPS}
    for round_ in range(rounds):
        order = CLIPS if round_ % 2 == 0 else CLIPS[::-1]
        for clips in order:
            started = time.perf_counter()
            records = list(predict_records(predictors[clips], videos))
            seconds[clips].append(time.perf_counter() - started)
            assert not any("error" in record for record in records)
    return {clips: len(videos) / statistics.median(times) for clips, times in seconds.items()}


@contextlib.contextmanager
def held(lock: Path | None):
    """The timed part runs holding ``lock`` (when given), so that no other timed run shares the machine."""
    if lock is None:
        yield
        return
    with open(lock, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield


def choose(rows: dict[int, dict], tolerance: float) -> int:
    """The fewest clips whose per-video accuracy is within ``tolerance`` points of the best."""
    best = max(row["accuracy"] for row in rows.values())
    return min(clips for clips, row in rows.items() if 100 * (best - row["accuracy"]) <= tolerance)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=float, default=12, help="training epochs (120 steps: short of perfect)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one model trained per seed")
    parser.add_argument("--speed_videos", type=int, default=8, help="test videos timed at 224 px")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, clips counts taking turns")
    parser.add_argument("--tolerance", type=float, default=0.5, help="points of accuracy a smaller default may lose")
    parser.add_argument("--quick", action="store_true", help="smoke run: a small dataset, 1 epoch, 1 round")
    parser.add_argument("--lock", type=Path, help="a file to flock while timing (training and accuracy run without)")
    parser.add_argument("--json", type=Path, help="write the headline rows here (benchmarks/results.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)  # before vidcls's own: its INFO lines would bury the table
    groups, seconds = ((2, 1, 1), 3.2) if args.quick else (GROUPS, SECONDS)
    epochs, seeds, rounds = (1, [0], 1) if args.quick else (args.epochs, args.seeds, args.rounds)
    data = motion_data(MOTION / ("quick" if args.quick else "full"), groups, seconds)
    models = [train(data, data.with_name(f"{data.name}_model{seed}"), epochs, seed) for seed in seeds]
    per_seed = [accuracies(model_dir, data) for model_dir in models]
    rows = {clips: {key: statistics.mean(run[clips][key] for run in per_seed) for key in per_seed[0][clips]}
            for clips in CLIPS}  # fmt: skip
    model_224 = make_data(DATA) / "model_224"
    if not (model_224 / "vidcls.json").exists():
        save_model(model_224, image_size=224)
    videos = sorted(map(str, (data / "test").rglob("*.avi")))[: args.speed_videos]
    with held(args.lock):
        rates = speeds(model_224, videos, rounds)
    default = choose(rows, args.tolerance)
    print(json.dumps({"rows": rows, "videos_per_s": rates, "default": default}), file=sys.stderr)
    print(f"{len(seeds)} models ({epochs:g} epochs each), {int(rows[1]['videos'])} held-out test videos of "
          f"{seconds:g} s; videos/s at 224 px on {len(videos)} of them")  # fmt: skip
    print(f"{'clips':>5} {'video acc':>9} {'clip acc':>8} {'videos/s':>8} {'vs 1 clip':>9}")
    results = []
    for clips, row in rows.items():
        accuracy, rate = 100 * row["accuracy"], rates[clips]
        print(f"{clips:>5} {accuracy:>8.2f}% {100 * row['clip_accuracy']:>7.2f}% {rate:>8.2f} {rate / rates[1]:>8.2f}x")
        note = f"held-out motion test split, mean of {len(seeds)} tiny 32 px models"
        results.append(Result("clips", f"--clips {clips}: per-video accuracy", round(accuracy, 2), "%", note=note))
        results.append(Result("clips", f"--clips {clips}: predict at 224 px", round(rate, 2), "videos/s",
                              baseline="--clips 1", ratio=round(rate / rates[1], 3)))  # fmt: skip
    print(f"default: {default} clips (the fewest within {args.tolerance} points of the best)")
    results.append(Result("clips", "chosen default clips", default, "clips", note=f"within {args.tolerance} pt"))
    write(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
