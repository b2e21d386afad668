"""The Hugging Face video classification guide's training setup, timed; prints one JSON row.

Its PyTorchVideo ``Ucf101`` train loader and transforms (scaled to the model's ``--size``), its ``collate_fn``
and its ``Trainer`` arguments, with evaluation and saving off for the timing. Runs in ``benchmarks/.guide-venv``
(no vidcls there): the model config comes as a JSON file. https://huggingface.co/docs/transformers/tasks/video_classification

    benchmarks/.guide-venv/bin/python benchmarks/guide_train.py --data D --config C.json --steps 33
"""

from __future__ import annotations

import argparse
import json
import tempfile

from guide_loader import collate_fn, guide_dataset
from step_timer import StepTimer
from transformers import AutoModelForVideoClassification, Trainer, TrainingArguments, VideoMAEConfig, set_seed


def run(args) -> dict:
    set_seed(0)
    config = VideoMAEConfig.from_json_file(args.config)
    config.image_size = args.size
    # The guide's from_pretrained gets transformers' default attention (SDPA); --attn eager is its fp32 eager setup.
    model = AutoModelForVideoClassification.from_config(config, attn_implementation=args.attn)
    timer = StepTimer(args.warmup)
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="guide-train-"),
        remove_unused_columns=False,
        eval_strategy="no",  # the guide's "epoch", off for the timing
        save_strategy="no",
        learning_rate=5e-5,
        per_device_train_batch_size=args.batch,
        warmup_steps=0.1,
        logging_steps=10,
        max_steps=args.steps,  # an IterableDataset has no length: the guide sets max_steps too
        dataloader_num_workers=args.workers,
        report_to="none",
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=guide_dataset(args.data, train=True, size=args.size),
        data_collator=collate_fn,
        callbacks=[timer],
    )
    trainer.train()
    return timer.result(args.batch)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", required=True, help="folder holding train/<Class>/")
    parser.add_argument("--config", required=True, help="VideoMAE config.json (labels included)")
    parser.add_argument("--size", type=int, default=32, help="model input height and width")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--attn", default=None, help="attention implementation (default: transformers' own)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=33, help="optimizer steps in all (max_steps)")
    parser.add_argument("--warmup", type=int, default=3, help="steps left out of the timing")
    print(json.dumps(run(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
