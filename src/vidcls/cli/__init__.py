"""``vidcls <command> [flags]``: one module per command, each with ``build_parser()`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import importlib.util
import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from vidcls.errors import ConfigError, VidclsError

# Command name -> module, imported only when that command runs.
COMMANDS = {
    "train": "vidcls.cli.train",
    "pretrain": "vidcls.cli.pretrain",
    "evaluate": "vidcls.cli.evaluate",
    "predict": "vidcls.cli.predict",
    "embed": "vidcls.cli.embed",
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


def _version() -> str:
    try:
        return version("vidcls")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


# Old flag names -> new ones, in every command that has the new one (a command's DEPRECATED_FLAGS adds its own).
RENAMED_FLAGS = {"--eval_clips": "--clips"}


def deprecated_flags(parser: argparse.ArgumentParser, command) -> dict[str, str]:
    """The old spellings ``parser`` still takes: the renames that apply to it and the command's own."""
    renamed = {old: new for old, new in RENAMED_FLAGS.items() if new in parser._option_string_actions}
    return {**renamed, **getattr(command, "DEPRECATED_FLAGS", {})}


BOOL_WORDS = {"true", "false", "yes", "no", "t", "f", "y", "n", "1", "0"}  # what HfArgumentParser's booleans take


def _takes_optional_bool(action: argparse.Action) -> bool:
    """A dataclass boolean: ``--flag`` alone means true, ``--flag false`` false (HfArgumentParser's nargs="?")."""
    return action.nargs == "?" and action.const is True


def normalize_flags(parser: argparse.ArgumentParser, argv: list[str], deprecated: dict[str, str]) -> list[str]:
    """``--flag-name`` -> ``--flag_name`` (every flag has both spellings), old names -> new ones with a warning,
    and unknown flags refused by name.

    Flags must be written in full: argparse's prefix matching is off, so ``--split`` never quietly means
    ``--split_ratios``. Raises ConfigError naming an unknown flag and the closest known one.
    """
    known = parser._option_string_actions  # argparse has no public list of its option strings
    normalized = []
    for position, token in enumerate(argv):
        if token == "--":  # everything after it is positional
            return normalized + argv[position:]
        if token.startswith("--"):
            flag, equals, value = token.partition("=")
            underscored = "--" + flag[2:].replace("-", "_")
            if underscored in deprecated:
                print(f"{parser.prog}: {underscored} is deprecated; use {deprecated[underscored]}", file=sys.stderr)
                flag = deprecated[underscored]
            elif flag not in known and underscored in known:
                flag = underscored
            if flag not in known:
                raise ConfigError(f"unknown flag {flag}{_did_you_mean(flag, known)} (see {parser.prog} --help)")
            following = argv[position + 1] if position + 1 < len(argv) else None
            if not equals and _takes_optional_bool(known[flag]) and str(following).lower() not in BOOL_WORDS:
                equals, value = "=", "true"  # `--timeline clip.mp4`: the switch is on, the video stays a video
            token = flag + equals + value
        normalized.append(token)
    return normalized


CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def apply_config_file(
    parser: argparse.ArgumentParser, argv: list[str], deprecated: dict[str, str] | None = None
) -> list[str]:
    """``vidcls <command> settings.yaml [flags]``: the file's settings become the defaults, flags override them.

    As transformers' example scripts take a JSON file; keys are flag names without dashes (``data_dir: DATA``);
    an old name in ``deprecated`` (``{"--old": "--new"}``) is read as the new one, with a warning as for flags.
    Returns the arguments left to parse.
    """
    if not argv or argv[0].startswith("-") or not argv[0].lower().endswith(CONFIG_SUFFIXES):
        return argv
    path = Path(argv[0])
    if not path.is_file():
        raise ConfigError(f"{path}: no such settings file")
    import yaml  # JSON is YAML too

    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a JSON or YAML file ({str(err).splitlines()[0]})") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected settings as name: value pairs, got {type(values).__name__}")
    for old, new in (deprecated or {}).items():
        if old[2:] in values:
            print(f"{parser.prog}: {path}: {old[2:]} is deprecated; use {new[2:]}", file=sys.stderr)
            values.setdefault(new[2:], values.pop(old[2:]))
    actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    for name in values:
        if name not in actions:
            raise ConfigError(f"{path}: unknown setting {name!r}{_did_you_mean(name, actions)}")
        action = actions[name]
        action.required = False  # the file gives it
        if not action.option_strings:  # a positional: now optional
            action.nargs = "*" if action.nargs in ("+", "*") else "?"
    parser.set_defaults(**values)
    return argv[1:]


def main(argv: list[str] | None = None) -> int:
    """Run a command; user errors print one line on stderr and return 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"vidcls {_version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        hint = _did_you_mean(name, COMMANDS) or f"; choose from {', '.join(COMMANDS)}"
        print(f"vidcls: error: unknown command {name!r}{hint}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = importlib.import_module(COMMANDS[name])
    # A command whose full parser needs torch (train: TrainingArguments) answers --help from a lighter one.
    light_help = hasattr(command, "build_help_parser") and any(t in ("-h", "--help") for t in rest)
    parser = command.build_help_parser() if light_help else command.build_parser()
    parser.prog = f"vidcls {name}"
    if "--help_all" in rest:
        parser.print_help()
        return 0
    parser.allow_abbrev = False  # read at parse time: no flag is a prefix of another
    try:
        deprecated = deprecated_flags(parser, command)
        rest = normalize_flags(parser, apply_config_file(parser, rest, deprecated), deprecated)
    except ConfigError as err:
        print(f"vidcls {name}: error: {err}", file=sys.stderr)
        return 2
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
