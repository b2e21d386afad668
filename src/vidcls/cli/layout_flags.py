"""The dataset layout flags shared by the commands that read a dataset (train has them as DataArguments)."""

from __future__ import annotations

import argparse

from vidcls.data.layouts import LAYOUT_FLAG_HELP, LayoutOptions


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    """Pass the values given to vidcls train, so a split made by group is made the same way."""
    parser.add_argument("--split_ratios", default=None, help=LAYOUT_FLAG_HELP["split_ratios"])
    parser.add_argument("--group_pattern", default=None, help=LAYOUT_FLAG_HELP["group_pattern"])
    parser.add_argument("--fold", type=int, default=1, help=LAYOUT_FLAG_HELP["fold"])
    parser.add_argument("--split_seed", type=int, default=0, help=LAYOUT_FLAG_HELP["split_seed"])


def layout_options(args: argparse.Namespace) -> LayoutOptions:
    return LayoutOptions.from_flags(args.split_ratios, args.group_pattern, args.fold, args.split_seed)
