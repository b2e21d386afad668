"""``vidcls <command> [flags]``: one module per command, each with ``build_parser()`` and ``run(args) -> int``."""

from __future__ import annotations

import logging
import sys

from vidcls.cli import demo, evaluate, predict, train
from vidcls.errors import VidclsError

COMMANDS = {
    "train": train,
    "evaluate": evaluate,
    "predict": predict,
    "demo": demo,
}


def _usage() -> str:
    lines = ["usage: vidcls <command> [flags]   (vidcls <command> --help for its flags)", "", "commands:"]
    lines += [f"  {name:<10} {module.__doc__.strip().splitlines()[0]}" for name, module in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run a command; user errors print one line on stderr and return 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vidcls: error: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = COMMANDS[name]
    parser = command.build_parser()
    parser.prog = f"vidcls {name}"
    try:
        args = parser.parse_args(rest)
    except SystemExit as exit_:  # argparse already printed the flag at fault
        return int(exit_.code or 0)
    try:
        return command.run(args)
    except VidclsError as err:
        print(f"vidcls {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vidcls {name}: interrupted", file=sys.stderr)
        return 130
