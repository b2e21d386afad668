"""``vidcls <command> [flags]``: one module per command, each with ``build_parser()`` and ``run(args) -> int``."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import sys
from pathlib import Path

from vidcls.errors import VidclsError

# Command name -> module, imported only when that command runs.
COMMANDS = {
    "train": "vidcls.cli.train",
    "evaluate": "vidcls.cli.evaluate",
    "predict": "vidcls.cli.predict",
    "show": "vidcls.cli.show",
    "cache": "vidcls.cli.cache",
    "demo": "vidcls.cli.demo",
    "check": "vidcls.cli.check",
    "serve": "vidcls.cli.serve",
    "export": "vidcls.cli.export",
}


def _summary(module: str) -> str:
    """A command module's first docstring line, read from its source: no import, so no torch to load."""
    source = Path(importlib.util.find_spec(module).origin).read_text()
    return ast.get_docstring(ast.parse(source)).strip().splitlines()[0]


def _usage() -> str:
    lines = ["usage: vidcls <command> [flags]   (vidcls <command> --help for its flags)", "", "commands:"]
    lines += [f"  {name:<10} {_summary(module)}" for name, module in COMMANDS.items()]
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
    command = importlib.import_module(COMMANDS[name])
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
