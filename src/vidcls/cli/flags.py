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
