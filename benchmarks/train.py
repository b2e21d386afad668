"""Train samples/s of vidcls against the Hugging Face guide's setup (its loader and Trainer arguments).

Both sides train the same model config on the same videos (320x240, 25 fps, 3.2 s; 8 classes) for ``--steps``
optimizer steps and time the steps after ``--warmup`` with the same callback (``step_timer.py``). The guide runs
in its own venv (``benchmarks/.guide-venv``, see ``loader.py``) through ``guide_train.py``; vidcls runs its real
training path: ``ClipDataset`` (uint8 clips) -> ``ClipCollator`` -> ``VideoTrainer`` (normalises on the device).

    .venv/bin/python benchmarks/train.py          # CPU: tiny VideoMAE at 32 px, batch 8 (or: make bench-train)
    .venv/bin/python benchmarks/train.py --gpu    # GPU: VideoMAE-base at 224 px, batch 16, with MFU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from loader import ensure_guide_venv
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
# Dense peak TFLOP/s (bf16, fp32 without TF32) by a substring of the GPU's name; first match wins.
PEAK_TFLOPS = {"H200": (989, 67), "H100": (989, 67), "A100": (312, 19.5), "L40S": (362, 91.6), "A10": (125, 31.2)}


def make_data(root: Path, clips_per_group: int) -> Path:
    """Write the guide-layout videos once (a marker file says they are complete)."""
    if not (root / ".complete").exists():
        print(f"writing videos to {root} (once) ...", file=sys.stderr)
        make_motion_dataset(root, groups=(4, 1, 1), clips_per_group=clips_per_group)
        (root / ".complete").touch()
    return root


def model_config(gpu: bool, label2id: dict[str, int]) -> VideoMAEConfig:
    config = VideoMAEConfig() if gpu else tiny_videomae_config()  # VideoMAE-base: 224 px, 16 frames
    config.label2id, config.id2label = label2id, {i: name for name, i in label2id.items()}
    config.num_labels = len(label2id)
    return config


def ensure_guide_trainer() -> Path:
    """The guide's venv (built by ``loader.py``) with the Trainer added: transformers and accelerate."""
    python = ensure_guide_venv()
    if subprocess.run([str(python), "-c", "import accelerate, transformers"], capture_output=True).returncode:
        print("installing transformers into the guide's venv (once) ...", file=sys.stderr)
        packages = ["transformers>=5,<6", "accelerate"]
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    return python


def guide_side(data: Path, config: VideoMAEConfig, args) -> dict:
    """The guide's loader and Trainer in its own venv (or ``--guide_python``); one JSON row back."""
    python = args.guide_python or ensure_guide_trainer()
    config_file = Path(tempfile.mkdtemp(prefix="bench-train-")) / "config.json"
    config.to_json_file(config_file)
    command = [str(python), str(HERE / "guide_train.py"), "--data", str(data), "--config", str(config_file)]
    command += ["--size", str(config.image_size), "--batch", str(args.batch), "--workers", str(args.workers)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.gpu:
        command += ["--attn", "eager"]  # the guide's fp32 eager setup
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the guide's training failed (exit {result.returncode}); see its output above")
    return json.loads(result.stdout.strip().splitlines()[-1])


def vidcls_trainer(data: Path, config: VideoMAEConfig, args, timer: StepTimer) -> VideoTrainer:
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
        "dataloader_num_workers": args.workers,
        "max_steps": args.steps,
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


def vidcls_side(data: Path, config: VideoMAEConfig, args) -> tuple[dict, float]:
    """vidcls's training timed, and the model's forward FLOPs per sample (counted on one batch)."""
    timer = StepTimer(args.warmup)
    trainer = vidcls_trainer(data, config, args, timer)
    trainer.train()
    return timer.result(args.batch), forward_flops(trainer.model, config, args.batch)


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


def report(guide: dict, ours: dict, target: float, flops: float | None = None) -> None:
    peak = peak_tflops() if flops else None
    rows = [("guide (fp32 eager)" if flops else "guide", guide, 1), ("vidcls", ours, 0)]
    print(f"{'side':<18} {'steps':>5} {'samples/s':>10} {'ratio':>6} {'load':>5}" + ("  MFU" if peak else ""))
    for name, row, fp32 in rows:
        line = f"{name:<18} {row['steps']:>5} {row['samples_per_s']:>10.2f} "
        line += f"{row['samples_per_s'] / guide['samples_per_s']:>5.2f}x {row['load']:>5.2f}"
        if peak:  # 3x forward FLOPs: the backward pass costs about twice the forward
            line += f"  {row['samples_per_s'] * 3 * flops / (peak[fp32] * 1e12):.1%}"
        print(line)
    print("(load: 1-minute load average before the side ran, on all the machine's CPUs)")
    ratio = ours["samples_per_s"] / guide["samples_per_s"]
    print(f"target >= {target}x: {'met' if ratio >= target else 'NOT met'} ({ratio:.2f}x)")
    if flops:
        print(f"forward GFLOPs per sample: {flops / 1e9:.1f}; MFU against {torch.cuda.get_device_name()}'s peak")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="where the videos go (default: .data/train[_gpu])")
    parser.add_argument("--gpu", action="store_true", help="VideoMAE-base on a GPU: guide fp32 eager vs bf16")
    parser.add_argument("--torch_compile", action="store_true", help="with --gpu: vidcls side compiled")
    parser.add_argument("--batch", type=int, default=None, help="default: 8 on CPU, 16 with --gpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers, both sides")
    parser.add_argument("--steps", type=int, default=33, help="optimizer steps in all")
    parser.add_argument("--warmup", type=int, default=3, help="steps left out of the timing")
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
    args.batch = args.batch or (16 if args.gpu else 8)
    # 64 training videos on a CPU; 512 on a GPU, so that the timed steps of batch 16 stay inside one epoch (each
    # epoch start waits for the workers' first batches: with 64 videos that wait dominated the GPU run).
    default_data = HERE / ".data" / ("train_gpu" if args.gpu else "train")
    data = make_data(args.data or default_data, 16 if args.gpu else 2)
    label2id = load_dataset(data).labels.label2id
    config = model_config(args.gpu, label2id)
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, torch {torch.__version__}", file=sys.stderr)
    load = os.getloadavg()[0]
    guide = {**guide_side(data, config, args), "load": load}
    load = os.getloadavg()[0]
    ours, flops = vidcls_side(data, config, args)
    ours["load"] = load
    report(guide, ours, 2.0 if args.gpu else 1.5, flops if args.gpu else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
