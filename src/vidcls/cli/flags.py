"""Every command's flags are dataclasses (its own, and the shared groups of ``vidcls.settings``) parsed by
``HfArgumentParser``: ``build_parser`` is ``command_parser(description, *dataclasses)`` and ``run`` gets them back
with ``split_namespace``. Command modules import torch only inside ``run``, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses

from transformers import HfArgumentParser

from vidcls.errors import ConfigError


def command_parser(description: str, *groups: type) -> HfArgumentParser:
    """A parser of the given dataclasses, one ``--help`` heading per group, defaults shown."""
    return HfArgumentParser(groups, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def trainer_help_parser(description: str, usage: str, *groups: type) -> HfArgumentParser:
    """A Trainer command's vidcls flags only, without loading torch: what its ``--help`` prints at once."""
    parser = command_parser(description, *groups)
    parser.usage = usage
    parser.add_argument("--help_all", action="store_true", help="List the Trainer's flags too (loads torch).")
    return parser


def trainer_parser(description: str, usage: str, defaults_from: str, *groups: type) -> HfArgumentParser:
    """A Trainer command's every flag: its vidcls groups, then TrainingArguments under a heading of its own."""
    from transformers import TrainingArguments  # loads torch

    class TrainerFlags(TrainingArguments):  # the same class, under its own --help heading
        _argument_group_name = f"Trainer (transformers TrainingArguments; defaults are {defaults_from})"

    parser = command_parser(description, *groups, TrainerFlags)
    parser.usage = usage  # the full usage lists hundreds of TrainingArguments flags: keep error messages short
    return parser


def split_namespace(args: argparse.Namespace, *classes: type) -> list:
    """The parsed flags as one instance of each dataclass; a check in ``__post_init__`` becomes a ConfigError."""
    values = vars(args)
    parsed = []
    for cls in classes:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        try:
            parsed.append(cls(**{name: value for name, value in values.items() if name in names}))
        except ValueError as err:  # transformers' TrainingArguments checks raise ValueError
            raise ConfigError(str(err).strip().splitlines()[0]) from err
    return parsed


def engine_jobs(engine, progress: str):
    """What runs a command's per-video jobs with ``--engine ray`` (``engine`` holds the ``EngineFlags``): Ray tasks,
    results in order; None for the local engine, whose worker processes each command starts itself."""
    if engine.engine != "ray":
        return None
    from functools import partial

    from vidcls.engine.ray_engine import ray_map  # imports ray only when it runs

    return partial(ray_map, address=engine.ray_address, progress=progress)


def ray_engine(engine, actors, model_dir: str, device: str, backend: str = "torch", int8: bool = False):
    """The ``RayEngine`` of ``--engine ray`` (``engine``: ``EngineFlags``, ``actors``: ``ActorFlags``), or None for
    the local engine; ConfigError for actor flags without it, or under torchrun (Ray schedules the videos itself)."""
    actors.check_engine(engine)
    if engine.engine != "ray":
        return None
    from vidcls.engine.distributed import rank_and_world
    from vidcls.engine.ray_engine import RayEngine

    if rank_and_world()[1] > 1:
        raise ConfigError("--engine ray schedules the videos itself: run it without torchrun")
    return RayEngine(str(model_dir), backend, int8, device, engine.ray_address, actors.concurrency, actors.num_gpus)
