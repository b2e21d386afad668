"""Fine-tune a video classifier on DATA/{train,val}/<Class>/<video> with the transformers Trainer."""

from __future__ import annotations

import argparse
import dataclasses
import json

from transformers import HfArgumentParser, TrainingArguments

from vidcls.engine.arguments import (
    COUPLED_DEFAULTS,
    GUIDE_TRAINING_DEFAULTS,
    DataArguments,
    ModelArguments,
    fill_coupled_defaults,
)
from vidcls.engine.recipes import TRAINING_DEFAULTS, RecipeArguments
from vidcls.engine.train import train
from vidcls.errors import ConfigError

ARGUMENT_CLASSES = (DataArguments, ModelArguments, RecipeArguments, TrainingArguments)


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser(
        ARGUMENT_CLASSES,
        description=__doc__ + " Every TrainingArguments flag is accepted; defaults follow the guide.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.set_defaults(**GUIDE_TRAINING_DEFAULTS)
    # Unset (None) until split_arguments, which gives them the --recipe's value, or follows the flags they go with.
    parser.set_defaults(**dict.fromkeys(TRAINING_DEFAULTS["guide"]))
    parser.set_defaults(**dict.fromkeys(COUPLED_DEFAULTS))
    # The full usage lists hundreds of TrainingArguments flags: keep error messages short.
    parser.usage = "vidcls train --data_dir DIR --output_dir DIR [--model_name_or_path ID | --config_name NAME] [flags]"
    return parser


def split_arguments(args: argparse.Namespace):
    """Namespace -> (DataArguments, ModelArguments, RecipeArguments, TrainingArguments); checks raise ConfigError."""
    values = fill_coupled_defaults(vars(args))
    for name, value in TRAINING_DEFAULTS.get(values.get("recipe"), TRAINING_DEFAULTS["guide"]).items():
        if values.get(name) is None:  # a flag given on the command line wins over the recipe
            values[name] = value
    parsed = []
    for cls in ARGUMENT_CLASSES:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        try:
            parsed.append(cls(**{k: v for k, v in values.items() if k in names}))
        except ValueError as err:
            raise ConfigError(str(err).strip().splitlines()[0]) from err
    return parsed


def run(args: argparse.Namespace) -> int:
    data_args, model_args, recipe_args, training_args = split_arguments(args)
    metrics = train(data_args, model_args, training_args, recipe_args)
    print(json.dumps({k: v for k, v in metrics.items() if k.startswith("eval_")}, indent=2))
    print(f"model saved to {training_args.output_dir}")
    return 0
