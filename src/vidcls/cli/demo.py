"""Generate a motion dataset, train a tiny VideoMAE on it, evaluate and predict: the whole guide on a CPU."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from vidcls.cli.flags import command_parser

# Training from scratch needs a far larger learning rate than the guide's fine-tuning.
DEMO_TRAINING = {
    "learning_rate": 1e-3,
    "weight_decay": 0.05,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 32,
    "lr_scheduler_type": "cosine",
    "logging_steps": 20,
}


@dataclass
class DemoArguments:
    _argument_group_name = "demo"

    data_dir: str = field(default="data/demo", metadata={"help": "Where the generated dataset goes (kept for reruns)."})
    output_dir: str = field(default="runs/demo", metadata={"help": "Where the trained model goes (replaced)."})
    num_train_epochs: float = field(default=10, metadata={"help": "Training epochs."})
    groups: str = field(default="40,4,6", metadata={"help": "Groups (textures) in train,val,test; 32 videos each."})
    seed: int = field(default=0, metadata={"help": "Seed for data and training."})


DEPRECATED_FLAGS = {"--epochs": "--num_train_epochs"}


def build_parser() -> argparse.ArgumentParser:
    return command_parser(__doc__, DemoArguments)


def _step(title: str, command: str) -> None:
    print(f"\n== {title}\n   $ {command}", flush=True)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm  # the rest loads torch: only to run, not for --help
    from transformers import TrainingArguments

    from vidcls.cli.evaluate import format_report
    from vidcls.data.synthetic import CLIPS_PER_GROUP, DIRECTIONS, make_motion_dataset
    from vidcls.engine.arguments import DataArguments, ModelArguments, guide_training_defaults
    from vidcls.engine.evaluate import evaluate
    from vidcls.engine.predict import Predictor
    from vidcls.engine.train import train

    started = time.monotonic()
    data_dir, output_dir = Path(args.data_dir), Path(args.output_dir)
    groups = tuple(int(n) for n in args.groups.split(","))

    _step("1/4 generate the dataset (class = direction of motion)", f"python -c 'make_motion_dataset(\"{data_dir}\")'")
    marker = data_dir / ".complete"
    if marker.exists() and marker.read_text() == f"{groups} {args.seed}":
        print(f"   reusing {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        with tqdm(total=sum(groups) * len(DIRECTIONS) * CLIPS_PER_GROUP, desc="generating", unit="video") as bar:
            make_motion_dataset(data_dir, groups=groups, seed=args.seed, progress=bar.update)
        marker.write_text(f"{groups} {args.seed}")

    flags = {**DEMO_TRAINING, "num_train_epochs": args.num_train_epochs, "seed": args.seed}
    _step(
        "2/4 train a tiny VideoMAE from scratch",
        f"vidcls train --data_dir {data_dir} --config_name tiny --hflip false --output_dir {output_dir} "
        + " ".join(f"--{k} {v}" for k, v in flags.items()),
    )
    shutil.rmtree(output_dir, ignore_errors=True)
    training_args = TrainingArguments(output_dir=str(output_dir), **{**guide_training_defaults(), **flags})
    train(DataArguments(data_dir=str(data_dir), hflip=False), ModelArguments(config_name="tiny"), training_args)

    _step("3/4 evaluate on the test split", f"vidcls evaluate --model_dir {output_dir} --data_dir {data_dir}")
    report = evaluate(output_dir, data_dir, "test")
    print(format_report(report))

    video = sorted((data_dir / "test").rglob("*.avi"))[0]
    _step("4/4 predict a test video", f"vidcls predict --model_dir {output_dir} {video}")
    print(json.dumps(Predictor.from_pretrained(output_dir).predict(video, top_k=3)))

    minutes = (time.monotonic() - started) / 60
    print(f"\nper-video test accuracy: {report['accuracy']:.3f} ({report['num_videos']} videos, {minutes:.1f} min)")
    print(f"model saved to {output_dir} (loads in transformers.pipeline('video-classification', model='{output_dir}'))")
    print(f"try it in a browser: vidcls serve --model_dir {output_dir}   (then open http://127.0.0.1:8000)")
    return 0
