"""Fine-tune a video classifier on DATA/{train,val}/<Class>/<video> with the transformers Trainer."""

from __future__ import annotations

import argparse
import json

from vidcls.cli.flags import split_namespace, trainer_help_parser, trainer_parser
from vidcls.engine.arguments import (
    COUPLED_DEFAULTS,
    TRAINING_DEFAULTS,
    DataArguments,
    ModelArguments,
    OutputArguments,
    RecipeArguments,
    fill_coupled_defaults,
    guide_training_defaults,
)
from vidcls.errors import ConfigError

VIDCLS_GROUPS = (DataArguments, ModelArguments, RecipeArguments, OutputArguments)
USAGE = "vidcls train --data_dir DIR --output_dir DIR [--model_name_or_path ID | --config_name NAME] [flags]"
TRAINER_FLAGS = (
    "Every flag of transformers' TrainingArguments is accepted too (--num_train_epochs, --learning_rate, "
    "--per_device_train_batch_size, --dataloader_num_workers, --bf16, --report_to, ...) with the guide's defaults; "
    "`vidcls train --help_all` lists them. --dataloader_num_workers -1, the default, is chosen from the decode and "
    "step times measured before training."
)
# Old names, still read (with a warning that gives the new one).
DEPRECATED_FLAGS = {"--split": "--split_ratios", "--label_smoothing": "--label_smoothing_factor"}


def build_help_parser():
    """vidcls's own flags, by group, without loading torch: what ``vidcls train --help`` prints at once."""
    return trainer_help_parser(f"{__doc__} {TRAINER_FLAGS}", USAGE, *VIDCLS_GROUPS)


def build_parser():
    """Every flag: vidcls's groups and the Trainer's (TrainingArguments), with the guide's defaults."""
    description = __doc__ + " Every TrainingArguments flag is accepted; defaults follow the guide."
    parser = trainer_parser(description, USAGE, "the guide's", *VIDCLS_GROUPS)
    parser.set_defaults(**guide_training_defaults())
    # Unset (None) until split_arguments, which gives them the --recipe's value, or follows the flags they go with.
    parser.set_defaults(**dict.fromkeys(TRAINING_DEFAULTS["guide"]))
    parser.set_defaults(**dict.fromkeys(COUPLED_DEFAULTS))
    return parser


def split_arguments(args: argparse.Namespace):
    """Namespace -> (DataArguments, ModelArguments, RecipeArguments, OutputArguments, TrainingArguments)."""
    from transformers import TrainingArguments

    if args.output_dir is None:  # the Trainer would quietly write to trainer_output/
        raise ConfigError("--output_dir is required: the folder where the trained model is saved")
    values = fill_coupled_defaults(vars(args))
    for name, value in TRAINING_DEFAULTS.get(values.get("recipe"), TRAINING_DEFAULTS["guide"]).items():
        if values.get(name) is None:  # a flag given on the command line wins over the recipe
            values[name] = value
    return split_namespace(argparse.Namespace(**values), *VIDCLS_GROUPS, TrainingArguments)


def run(args: argparse.Namespace) -> int:
    from vidcls.engine.train import train  # torch: loaded only to run, not for --help

    data_args, model_args, recipe_args, output_args, training_args = split_arguments(args)
    metrics = train(data_args, model_args, training_args, recipe_args, output_args)
    print(json.dumps({k: v for k, v in metrics.items() if k.startswith("eval_")}, indent=2))
    print(f"model saved to {training_args.output_dir}")
    return 0
