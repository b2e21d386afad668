"""The dataset layout flags shared by the commands that read a dataset (train has them as DataArguments)."""

from __future__ import annotations

import argparse

from vidcls.data.layouts import LAYOUT_FLAG_HELP, LayoutOptions

DEFAULTS = LayoutOptions()


def add_layout_arguments(parser: argparse.ArgumentParser) -> None:
    """Pass the values given to vidcls train, so a split made by group is made the same way."""
    parser.add_argument("--split_ratios", default=None, help=LAYOUT_FLAG_HELP["split_ratios"])
    parser.add_argument("--group_pattern", default=None, help=LAYOUT_FLAG_HELP["group_pattern"])
    parser.add_argument("--fold", type=int, default=1, help=LAYOUT_FLAG_HELP["fold"])
    parser.add_argument("--split_seed", type=int, default=0, help=LAYOUT_FLAG_HELP["split_seed"])
    parser.add_argument(
        "--max_extract_gb", type=float, default=DEFAULTS.max_extract_gb, help=LAYOUT_FLAG_HELP["max_extract_gb"]
    )
    parser.add_argument(
        "--max_archive_members",
        type=int,
        default=DEFAULTS.max_archive_members,
        help=LAYOUT_FLAG_HELP["max_archive_members"],
    )
    parser.add_argument("--allow_outside_paths", action="store_true", help=LAYOUT_FLAG_HELP["allow_outside_paths"])


def layout_options(args: argparse.Namespace) -> LayoutOptions:
    return LayoutOptions.from_args(args)
