"""Pretrain a VideoMAE masked autoencoder on unlabelled videos, then fine-tune it with vidcls train."""

from __future__ import annotations

import argparse
import json

from vidcls.cli.flags import split_namespace, trainer_help_parser, trainer_parser
from vidcls.engine.arguments import OutputArguments, guide_training_defaults
from vidcls.engine.pretrain_arguments import (
    PRETRAIN_TRAINING_DEFAULTS,
    PretrainDataArguments,
    PretrainModelArguments,
    scaled_learning_rate,
)
from vidcls.errors import ConfigError

VIDCLS_GROUPS = (PretrainDataArguments, PretrainModelArguments, OutputArguments)
USAGE = (
    "vidcls pretrain --data_dir DIR --output_dir DIR [--config_name tiny|base|FILE | --model_name_or_path M] [flags]"
)
DETAILS = (
    "The VideoMAE paper's recipe is the default: tube masking at --mask_ratio 0.9, normalised-pixel targets, AdamW "
    "(0.9, 0.95), weight decay 0.05, cosine schedule with 5% warmup, --base_learning_rate x total batch / 256, "
    "random multi-scale crops and flips, 800 epochs. Every flag of transformers' TrainingArguments is accepted "
    "(--num_train_epochs, --per_device_train_batch_size, --learning_rate, --bf16, ...); `vidcls pretrain --help_all` "
    "lists them; --dataloader_num_workers -1, the default, is chosen as in vidcls train. A rerun of the same "
    "command resumes. Then: vidcls train --model_name_or_path OUTPUT_DIR."
)


def build_help_parser():
    """vidcls's own pretraining flags, without loading torch."""
    return trainer_help_parser(f"{__doc__} {DETAILS}", USAGE, *VIDCLS_GROUPS)


def build_parser():
    """Every flag: vidcls's groups and the Trainer's, with the paper's pretraining defaults."""
    parser = trainer_parser(f"{__doc__} {DETAILS}", USAGE, "the VideoMAE paper's", *VIDCLS_GROUPS)
    parser.set_defaults(**{**guide_training_defaults(), **PRETRAIN_TRAINING_DEFAULTS})
    parser.set_defaults(learning_rate=None)  # unset: scaled from --base_learning_rate
    return parser


def split_arguments(args: argparse.Namespace):
    """Namespace -> (PretrainDataArguments, PretrainModelArguments, OutputArguments, TrainingArguments)."""
    from transformers import TrainingArguments

    if args.output_dir is None:
        raise ConfigError("--output_dir is required: the folder where the pretrained model is saved")
    values = vars(args)
    scale = values["learning_rate"] is None
    if scale:
        values = {**values, "learning_rate": 0.0}  # set below, once the number of processes is known
    data_args, model_args, output_args, training_args = split_namespace(
        argparse.Namespace(**values), *VIDCLS_GROUPS, TrainingArguments
    )
    if scale:
        training_args.learning_rate = scaled_learning_rate(
            model_args.base_learning_rate,
            training_args.per_device_train_batch_size,
            training_args.world_size,
            training_args.gradient_accumulation_steps,
        )
    return data_args, model_args, output_args, training_args


def run(args: argparse.Namespace) -> int:
    from vidcls.engine.pretrain import pretrain  # torch: loaded only to run

    data_args, model_args, output_args, training_args = split_arguments(args)
    metrics = pretrain(data_args, model_args, training_args, output_args)
    print(json.dumps({k: v for k, v in metrics.items() if k != "loss_history"}, indent=2))
    print(f"pretrained model saved to {training_args.output_dir}; fine-tune it: vidcls train --model_name_or_path "
          f"{training_args.output_dir} --data_dir DATA --output_dir RUN")  # fmt: skip
    return 0
