"""Train samples/s of vidcls against the Hugging Face guide's setup (its loader and Trainer arguments).

Both sides train the same model config from the same random init on the same videos (320x240, 25 fps, 3.2 s;
8 classes) for ``--steps`` optimizer steps and time the steps after ``--warmup`` with the same callback
(``step_timer.py``). The guide runs in its own venv (``benchmarks/.guide-venv``, see ``loader.py``) through
``guide_train.py``; vidcls runs its real training path: ``ClipDataset`` (uint8 clips) -> ``ClipCollator`` ->
``VideoTrainer`` (normalises on the device).

On a CPU the headline is the guide's size: 224 px, 16 frames, the ``tiny`` VideoMAE (width 128, 4 layers) in
16 px patches (as ``workers.py`` and ``fold.py`` build it), each side at its best of 0 and 2 DataLoader workers;
the 32 px ``tiny`` model, where the model is nearly free, is a row labelled loader-bound. Every (size, side,
workers) run is one block (4x the timed steps at 32 px, where a step is ~40x cheaper); ``--rounds`` rounds of all
blocks, the order reversed every other round; the median of each block's samples/s counts. vidcls's default
workers, where they are none of ``--workers``, are a block of their own. Results: BENCHMARKS.md.

    .venv/bin/python benchmarks/train.py          # CPU: 224 px and 32 px, 0 and 2 workers (or: make bench-train)
    .venv/bin/python benchmarks/train.py --quick  # smoke run: 0 workers, 1 round of 3 steps of 2 clips
    .venv/bin/python benchmarks/train.py --gpu    # GPU: VideoMAE-base at 224 px, batch 16, with MFU
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from loader import ensure_guide_venv
from results import Result, write
from step_timer import StepTimer
from transformers import AutoModelForVideoClassification, TrainingArguments, VideoMAEConfig, set_seed

from vidcls.data.dataset import ClipDataset
from vidcls.data.layouts import load_dataset
from vidcls.data.synthetic import make_motion_dataset
from vidcls.engine.arguments import guide_training_defaults
from vidcls.engine.batching import ClipCollator
from vidcls.engine.trainer import VideoTrainer
from vidcls.models.factory import resolve_clip_spec, tiny_videomae_config

HERE = Path(__file__).resolve().parent
# engine/workers.py (issue #16): vidcls train chooses its workers and model threads; before it, a fixed default.
WORKERS_RULE = importlib.util.find_spec("vidcls.engine.workers") is not None
# Dense peak TFLOP/s (bf16, fp32 without TF32) by a substring of the GPU's name; first match wins.
PEAK_TFLOPS = {"H200": (989, 67), "H100": (989, 67), "A100": (312, 19.5), "L40S": (362, 91.6), "A10": (125, 31.2)}


def make_data(root: Path, clips_per_group: int) -> Path:
    """Write the guide-layout videos once (a marker file says they are complete)."""
    if not (root / ".complete").exists():
        print(f"writing videos to {root} (once) ...", file=sys.stderr)
        make_motion_dataset(root, groups=(4, 1, 1), clips_per_group=clips_per_group)
        (root / ".complete").touch()
    return root


def model_config(size: int | None, label2id: dict[str, int]) -> VideoMAEConfig:
    """VideoMAE-base (``size`` None: 224 px, 16 frames) or the ``tiny`` preset at ``size`` px, in 16 px patches
    from 224 px (8 x 14 x 14 = 1568 tokens), its own 8 px ones at 32 px (128 tokens)."""
    if size is None:
        config = VideoMAEConfig()
    else:
        config = tiny_videomae_config()
        if size != config.image_size:
            config.image_size, config.patch_size = size, 16
    config.label2id, config.id2label = label2id, {i: name for name, i in label2id.items()}
    config.num_labels = len(label2id)
    return config


def max_steps(config: VideoMAEConfig, args) -> int:
    """``args.steps``, or at 32 px 4x as many timed steps: a loader-bound step takes ~0.1 s, and 6 of them were
    too short a block (one stall halved a block's rate)."""
    return args.steps if config.image_size != 32 or args.quick else args.warmup + 4 * (args.steps - args.warmup)


def ensure_guide_trainer() -> Path:
    """The guide's venv (built by ``loader.py``) with the Trainer added: transformers and accelerate."""
    python = ensure_guide_venv()
    if subprocess.run([str(python), "-c", "import accelerate, transformers"], capture_output=True).returncode:
        print("installing transformers into the guide's venv (once) ...", file=sys.stderr)
        packages = ["transformers>=5,<6", "accelerate"]
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    return python


def guide_side(data: Path, config: VideoMAEConfig, workers: int, args) -> dict:
    """The guide's loader and Trainer in its own venv (or ``--guide_python``); one JSON row back."""
    python = args.guide_python or ensure_guide_trainer()
    config_file = Path(tempfile.mkdtemp(prefix="bench-train-")) / "config.json"
    config.to_json_file(config_file)
    command = [str(python), str(HERE / "guide_train.py"), "--data", str(data), "--config", str(config_file)]
    command += ["--size", str(config.image_size), "--batch", str(args.batch), "--workers", str(workers)]
    command += ["--steps", str(max_steps(config, args)), "--warmup", str(args.warmup)]
    if args.gpu:
        command += ["--attn", "eager"]  # the guide's fp32 eager setup
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the guide's training failed (exit {result.returncode}); see its output above")
    return json.loads(result.stdout.strip().splitlines()[-1])


def vidcls_trainer(data: Path, config: VideoMAEConfig, workers: int, args, timer: StepTimer) -> VideoTrainer:
    """The pieces ``vidcls.engine.train.train`` uses, with evaluation and saving off for the timing."""
    set_seed(0)
    records = load_dataset(data).records("train", "--train_split")
    attention = "sdpa" if args.gpu else None  # None: transformers' default (SDPA where available)
    model = AutoModelForVideoClassification.from_config(config, attn_implementation=attention)
    spec = resolve_clip_spec(model)
    settings = {
        **guide_training_defaults(),
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "report_to": "none",
        "per_device_train_batch_size": args.batch,
        "dataloader_num_workers": workers,
        "max_steps": max_steps(config, args),
        "label_names": ["labels", "video_index"],
        "seed": 0,
    }
    if args.gpu:
        settings.update(bf16=True, torch_compile=args.torch_compile)
    return VideoTrainer(
        model=model,
        args=TrainingArguments(output_dir=tempfile.mkdtemp(prefix="vidcls-train-"), **settings),
        train_dataset=ClipDataset(records, spec, train=True),
        data_collator=ClipCollator("pixel_values"),
        clip_spec=spec,
        input_name="pixel_values",
        callbacks=[timer],
    )


def vidcls_side(data: Path, config: VideoMAEConfig, workers: int, args) -> dict:
    """vidcls's training timed, in this process (a fresh trainer each time: its workers end with it), with the
    workers and model threads ``vidcls train`` would use; ``workers`` may be the default's "choose" value."""
    timer = StepTimer(args.warmup)
    trainer = vidcls_trainer(data, config, workers, args, timer)
    threads = torch.get_num_threads()
    if WORKERS_RULE:  # as engine/train.py: an unset worker count is chosen by timing, the model threads follow
        from vidcls.engine.workers import choose_training_workers

        workers, threads = choose_training_workers(trainer, trainer.train_dataset)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        trainer.train()
    finally:
        torch.set_num_threads(previous)
    return {**timer.result(args.batch), "workers": workers}


def forward_flops(model, config: VideoMAEConfig, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    # (B, T, C, H, W), as the collator and the guide's collate_fn hand it over
    pixels = torch.randn(batch, config.num_frames, 3, config.image_size, config.image_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(pixel_values=pixels)
    return counter.get_total_flops() / batch


def peak_tflops() -> tuple[float, float] | None:
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def run_blocks(blocks: list[tuple], data: Path, configs: dict, args) -> tuple[dict[tuple, float], dict]:
    """Median samples/s of each (size, side, workers) block over ``args.rounds`` rounds, the order reversed every
    other round, so a load that comes and goes on a shared machine weighs on every block alike; and the workers
    each block used (the default's, as chosen)."""
    rates, used = {block: [] for block in blocks}, {}
    for round_ in range(args.rounds):
        for block in blocks[:: -1 if round_ % 2 else 1]:
            size, side, workers = block
            load = os.getloadavg()[0]
            run = guide_side if side == "guide" else vidcls_side
            result = run(data, configs[size], workers, args)
            rate, used[block] = result["samples_per_s"], result.get("workers", workers)
            rates[block].append(rate)
            print(f"round {round_ + 1}: {side} {size or 224} px, {used[block]} workers: {rate:.2f} samples/s "
                  f"(load before {load:.1f})", file=sys.stderr, flush=True)  # fmt: skip
    return {block: statistics.median(values) for block, values in rates.items()}, used


def size_rows(size: int | None, rates: dict, used: dict, default_workers: int, target: float | None) -> list[Result]:
    """One size's rows: vidcls at its best against the guide at its best, each worker count side by side, and
    vidcls's default workers against 0 (issue #16: a default must never be slower than 0 workers)."""
    model = "VideoMAE-base" if size is None else "tiny width 128"
    label = f"{size or 224} px, 16 frames, {model}"
    note = "loader-bound: 32 px model" if size == 32 else ""
    guide = {w: rate for (s, side, w), rate in rates.items() if s == size and side == "guide"}
    ours = {w: rate for (s, side, w), rate in rates.items() if s == size and side == "vidcls"}

    def name(workers: int) -> str:  # the default's workers, as chosen, are the workers it used
        count = used[size, "vidcls", workers]
        if workers != default_workers:
            return f"{count} workers"
        return f"{count} workers = the default" if count == workers else f"the default, which chose {count} workers"

    best_guide, best_ours = max(guide, key=guide.get), max(ours, key=ours.get)
    rows = [
        Result("train", f"vidcls at its best ({name(best_ours)}), {label}", ours[best_ours], "samples/s",
               f"guide Trainer at its best ({best_guide} workers): {guide[best_guide]:.2f}",
               ours[best_ours] / guide[best_guide], target, note),
    ]  # fmt: skip
    for workers, rate in ours.items():
        baseline = f"guide, {workers} workers: {guide[workers]:.2f}" if workers in guide else None
        ratio = rate / guide[workers] if workers in guide else None
        rows.append(Result("train", f"vidcls, {name(workers)}, {label}", rate, "samples/s", baseline, ratio, None,
                           note))  # fmt: skip
    if 0 in ours and default_workers in ours and default_workers != 0:
        chosen = used[size, "vidcls", default_workers]
        rows.append(Result("train", f"vidcls default ({chosen} workers) vs 0 workers, {label}",
                           ours[default_workers], "samples/s", f"vidcls, 0 workers: {ours[0]:.2f}",
                           ours[default_workers] / ours[0], 1.0, note))  # fmt: skip
    return rows


def print_gpu(rates: dict[tuple, float], flops: float) -> None:
    """The GPU run's samples/s and MFU (3x forward FLOPs: the backward pass costs about twice the forward)."""
    peak = peak_tflops()
    print(f"forward GFLOPs per sample: {flops / 1e9:.1f}; MFU against {torch.cuda.get_device_name()}'s peak")
    for (_, side, workers), rate in rates.items():
        fp32 = side == "guide"  # the guide's fp32 eager setup against vidcls's bf16
        mfu = f", MFU {rate * 3 * flops / (peak[fp32] * 1e12):.1%}" if peak else ""
        print(f"{side} ({'fp32 eager' if fp32 else 'bf16'}), {workers} workers: {rate:.2f} samples/s{mfu}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="where the videos go (default: .data/train[_gpu])")
    parser.add_argument("--gpu", action="store_true", help="VideoMAE-base on a GPU: guide fp32 eager vs bf16")
    parser.add_argument("--torch_compile", action="store_true", help="with --gpu: vidcls side compiled")
    parser.add_argument("--batch", type=int, default=None, help="default: 8 on CPU, 16 with --gpu")
    parser.add_argument("--workers", type=int, nargs="+", help="DataLoader workers, each side (default: 0 2; GPU: 2)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 32], help="CPU: model input sizes to run")
    parser.add_argument("--steps", type=int, help="optimizer steps in all, per block (default: 8; GPU: 33)")
    parser.add_argument("--warmup", type=int, help="steps left out of the timing (default: 2; GPU: 3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every block (median counts)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 0 workers, 1 round of 3 steps of 2")
    parser.add_argument("--json", default=None, help="write the headline rows (results.py) to this file")
    parser.add_argument(
        "--guide_python",
        type=Path,
        default=None,
        help="an interpreter that already has the guide's stack (pytorchvideo, av, transformers, accelerate), "
        "used instead of building benchmarks/.guide-venv (e.g. on a machine without network)",
    )
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        print("no GPU here: run `python benchmarks/train.py --gpu` on a GPU machine")
        return 0
    if args.steps is None:
        args.steps = 33 if args.gpu else 8
    if args.warmup is None:
        args.warmup = 3 if args.gpu else 2
    if args.quick:
        args.workers, args.rounds, args.steps, args.warmup, args.batch = [0], 1, 3, 1, 2
    args.batch = args.batch or (16 if args.gpu else 8)
    workers = args.workers or ([2] if args.gpu else [0, 2])
    default_workers = guide_training_defaults()["dataloader_num_workers"]
    # 64 training videos on a CPU; 512 on a GPU, so that the timed steps of batch 16 stay inside one epoch (each
    # epoch start waits for the workers' first batches: with 64 videos that wait dominated the GPU run).
    default_data = HERE / ".data" / ("train_gpu" if args.gpu else "train")
    data = make_data(args.data or default_data, 16 if args.gpu else 2)
    label2id = load_dataset(data).labels.label2id
    sizes = [None] if args.gpu else args.sizes
    configs = {size: model_config(size, label2id) for size in sizes}
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, torch {torch.__version__}", file=sys.stderr)
    # Each side at every worker count, and vidcls also at its default where that is none of them (e.g. chosen).
    vidcls_workers = workers + ([default_workers] if default_workers not in workers and not args.quick else [])
    blocks = [(size, side, w) for size in sizes for side, counts in (("guide", workers), ("vidcls", vidcls_workers))
              for w in counts]  # fmt: skip
    rates, used = run_blocks(blocks, data, configs, args)
    # Targets: 2x the guide on a GPU, 1.5x on a CPU (the earlier issue's), at the guide's size only.
    targets = {None: 2.0, 224: 1.5}
    rows = [row for size in sizes for row in size_rows(size, rates, used, default_workers, targets.get(size))]
    print(f"train, batch {args.batch}, {args.steps - args.warmup} timed steps per block (4x at 32 px), median of "
          f"{args.rounds} round(s); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "—"
        print(f"{row.row}: {row.value:.2f} {row.unit}; against {row.baseline}: {ratio} {row.note}")
    if args.gpu:
        print_gpu(rates, forward_flops(AutoModelForVideoClassification.from_config(configs[None]).cuda(),
                                       configs[None], args.batch))  # fmt: skip
    write(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
