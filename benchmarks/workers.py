"""Does a command's default (workers unset: chosen from measured costs) ever lose to 0 workers? Side by side, for
``vidcls predict``, ``evaluate``, ``train`` and ``serve``, on a model-bound and a decode-bound workload.

- model-bound: the ``tiny`` VideoMAE at the guide's 224 px (16 px patches, 16 frames, width 128, random weights);
- decode-bound (loader-bound): the ``tiny`` VideoMAE at 32 px, where the model is nearly free.

Videos: those of ``benchmarks/predict.py`` (320x240, 25 fps, 10 s); serve uploads the real UCF101 clip of
``benchmarks/serve.py``. Sides per command:

- predict, evaluate: ``--num_workers`` unset (default), 0 and 2; 4 clips of 16 frames per video, 16 views a call;
- train: ``--dataloader_num_workers`` unset (default: its clips decoded and steps timed before training counted),
  0 and 2; batch 8;
- serve: the default limits, and one request at a time (``--max_concurrent 1``: decoding never beside the model,
  the serving analogue of 0 workers); 4 clients upload at once.

Sides take turns within each round; the median of the rounds counts (warm-ups excluded). Results: BENCHMARKS.md.

    PYTHONPATH=src .venv/bin/python benchmarks/workers.py --json workers.json   # about 12 minutes on 2 cores
    PYTHONPATH=src .venv/bin/python benchmarks/workers.py --only train serve    # some commands only
    PYTHONPATH=src .venv/bin/python benchmarks/workers.py --quick               # smoke run, under a minute
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from predict import DATA, make_data  # benchmarks/predict.py (this script's folder): its videos and 32 px model
from results import Result, write
from serve import clip, free_port, load, start_server
from transformers import TrainingArguments, set_seed

from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import VideoRecord
from vidcls.data.synthetic import DIRECTIONS
from vidcls.engine.batching import ClipCollator
from vidcls.engine.evaluate import evaluate_records
from vidcls.engine.predict import Predictor
from vidcls.engine.predict_batch import predict_records
from vidcls.engine.trainer import VideoTrainer
from vidcls.engine.workers import AUTO, choose_training_workers, torch_threads
from vidcls.models.factory import create_model, load_trained, resolve_clip_spec, save_trained, tiny_videomae_config

COMMANDS = ("predict", "evaluate", "train", "serve")
WORKER_SIDES = {"default": None, "0 workers": 0, "2 workers": 2}  # None: unset, chosen by the command


def save_224_model(output_dir: Path) -> Path:
    """The ``tiny`` VideoMAE at 224 px in 16 px patches (as benchmarks/fold.py), saved as vidcls train saves it."""
    if (output_dir / "vidcls.json").exists():
        return output_dir
    torch.manual_seed(0)
    config = tiny_videomae_config()
    config.image_size, config.patch_size = 224, 16
    output_dir.mkdir(parents=True, exist_ok=True)
    config.to_json_file(output_dir.parent / "config_224.json")
    model = create_model(None, str(output_dir.parent / "config_224.json"), {d: i for i, d in enumerate(DIRECTIONS)})
    return save_trained(model, resolve_clip_spec(model), output_dir)


def median_rates(sides: dict, run: Callable, rounds: int, items: int) -> dict[str, float]:
    """Median items/s of ``run(side)`` per side over ``rounds`` rounds, sides taking turns (``items`` per run)."""
    seconds = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            started = time.perf_counter()
            run(side)
            seconds[name].append(time.perf_counter() - started)
        print("round:", {name: round(items / times[-1], 2) for name, times in seconds.items()}, flush=True)
    return {name: items / statistics.median(times) for name, times in seconds.items()}


def predict_rates(model_dir: Path, videos: list[str], rounds: int) -> dict[str, float]:
    predictor = Predictor.from_pretrained(model_dir, device="cpu")

    def run(workers):
        records = list(predict_records(predictor, videos, batch_size=16, num_workers=workers))
        assert not any("error" in record for record in records)

    for workers in WORKER_SIDES.values():  # warm-up
        list(predict_records(predictor, videos[:2], batch_size=16, num_workers=workers))
    return median_rates(WORKER_SIDES, run, rounds, len(videos))


def evaluate_rates(model_dir: Path, records: list[VideoRecord], rounds: int) -> dict[str, float]:
    predictor = Predictor.from_pretrained(model_dir, device="cpu")

    def run(workers, some=records):
        report = evaluate_records(predictor, some, output_file=None, batch_size=16, num_workers=workers)
        assert report["num_skipped_videos"] == 0

    for workers in WORKER_SIDES.values():  # warm-up
        run(workers, records[:2])
    return median_rates(WORKER_SIDES, run, rounds, len(records))


def train_rates(model_dir: Path, records: list[VideoRecord], rounds: int, steps: int, batch: int = 8) -> dict:
    """Training samples/s from the trainer's creation on (the default's timing counted, the model's creation not)."""
    model, spec = load_trained(model_dir)
    dataset = ClipDataset(records, spec, train=True)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}

    probes = []  # seconds the default spent choosing (batch decoded and steps timed), wasted work

    def run(workers, max_steps=steps):
        model.load_state_dict(initial)  # every side trains the same model from the same start
        set_seed(0)
        settings = dict(
            per_device_train_batch_size=batch, max_steps=max_steps, dataloader_persistent_workers=workers != 0,
            dataloader_num_workers=AUTO if workers is None else workers, eval_strategy="no", save_strategy="no",
            report_to="none", use_cpu=True, label_names=["labels", "video_index"], remove_unused_columns=False,
            disable_tqdm=True, seed=0,
        )  # fmt: skip
        trainer = VideoTrainer(
            model=model,
            args=TrainingArguments(output_dir=tempfile.mkdtemp(prefix="vidcls-workers-"), **settings),
            train_dataset=dataset,
            data_collator=ClipCollator("pixel_values"),
            clip_spec=spec,
            input_name="pixel_values",
        )
        started = time.perf_counter()
        _, threads = choose_training_workers(trainer, dataset)
        if workers is None:
            probes.append(time.perf_counter() - started)
        with torch_threads(threads):
            trainer.train()

    for workers in WORKER_SIDES.values():  # warm-up
        run(workers, max_steps=1)
    rates = median_rates(WORKER_SIDES, run, rounds, steps * batch)
    return rates, statistics.median(probes[1:])


def serve_rates(model_dir: Path, rounds: int, requests: int, concurrency: int = 4) -> dict[str, float]:
    """Requests/s of a server with the default limits and of one handling a request at a time."""
    sides = {"default": (), "one at a time": ("--max_concurrent", "1")}
    video = clip()

    def run(flags):
        port = free_port()
        server = start_server(model_dir, port, concurrency, extra_flags=flags)
        try:
            row = load(f"http://127.0.0.1:{port}", video, requests, concurrency)
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert row["failed"] == 0, row
        return row["requests_per_s"]

    rates = {name: [] for name in sides}
    for _ in range(rounds):  # a server's start-up is not timed: only its answers (load() warms it up first)
        for name, flags in sides.items():
            rates[name].append(run(flags))
        print("serve round:", {name: round(values[-1], 2) for name, values in rates.items()}, flush=True)
    return {name: statistics.median(values) for name, values in rates.items()}


def results_of(command: str, workload: str, rates: dict[str, float], unit: str, extra: str = "") -> list[Result]:
    """Each side's rate as a row; the default's against the slower-never baseline (0 workers / one at a time)."""
    baseline = "one at a time" if command == "serve" else "0 workers"
    note = "loader-bound: 32 px model" if "32 px" in workload else "model-bound: 224 px, 16 frames"
    rows = []
    for side, value in rates.items():
        target = 1.0 if side == "default" else None
        ratio = None if side == baseline else round(value / rates[baseline], 3)
        rows.append(
            Result("workers", f"{command}, {workload}: {side}", round(value, 2), unit,
                   baseline=None if side == baseline else f"{command}, {baseline}", ratio=ratio, target=target,
                   note=note + (extra if side == "default" else ""))
        )  # fmt: skip
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8, help="Videos per predict/evaluate run and train set.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="Training steps per train run (batch 8).")
    parser.add_argument("--requests", type=int, default=12, help="Requests per serve run.")
    parser.add_argument("--only", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    parser.add_argument("--sizes", nargs="+", choices=("224", "32"), default=["224", "32"], help="Workloads, px.")
    parser.add_argument("--json", default=None, help="Write the result rows here (benchmarks/results.py).")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 px, 4 videos, 1 round, 1 step, 4 requests")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(name)s: %(message)s")
    logging.getLogger("vidcls.engine").setLevel(logging.INFO)  # what each default chose, and why
    if args.quick:
        args.videos, args.rounds, args.steps, args.requests = 4, 1, 1, 4
    root = make_data(DATA)
    paths = sorted(map(str, (root / "videos").glob("*.avi")))[: args.videos]
    records = [VideoRecord(Path(path), i % len(DIRECTIONS), str(i)) for i, path in enumerate(paths)]
    workloads = {"224 px": save_224_model(root / "model_224"), "32 px": root / "model"}
    sizes = ["32"] if args.quick else args.sizes  # quick: the 224 px model alone takes minutes
    workloads = {name: model_dir for name, model_dir in workloads.items() if name.split()[0] in sizes}
    print(f"{len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, {len(paths)} videos, {args.rounds} rounds")
    rows = []
    for workload, model_dir in workloads.items():
        if "predict" in args.only:
            rows += results_of("predict", workload, predict_rates(model_dir, paths, args.rounds), "videos/s")
        if "evaluate" in args.only:
            rows += results_of("evaluate", workload, evaluate_rates(model_dir, records, args.rounds), "videos/s")
        if "train" in args.only:
            rates, probe_s = train_rates(model_dir, records, args.rounds, args.steps)
            rows += results_of("train", workload, rates, "samples/s", f"; choosing took {probe_s:.1f} s of the run")
        if "serve" in args.only:
            rows += results_of("serve", workload, serve_rates(model_dir, args.rounds, args.requests), "requests/s")
    for row in rows:
        versus = f"  {row.ratio:.2f}x {row.baseline}" if row.ratio is not None else ""
        print(f"{row.row:<40} {row.value:>8.2f} {row.unit:<10}{versus}")
    write(args.json, rows)


if __name__ == "__main__":
    main()
