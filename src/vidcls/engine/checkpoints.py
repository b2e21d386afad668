"""Which checkpoint a rerun continues from: the newest one whose files are all there and whole.

A checkpoint is written file by file (weights, optimizer, scheduler, RNG states, trainer_state.json last). A
process killed while saving leaves one without trainer_state.json; a full disk or a crash before the data
reached the disk leaves a file cut short, which the Trainer would only find out when loading it (a
``JSONDecodeError`` on every rerun). Both are removed, saying why, and the one before is resumed from.
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

from safetensors import SafetensorError, safe_open
from transformers import TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME as TRAINER_STATE

from vidcls.errors import ConfigError

logger = logging.getLogger(__name__)

# A checkpoint holds its model in one of these (sharded weights come with an index).
CHECKPOINT_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# The files the Trainer writes, each checked by its format; others are left alone.
CHECKED_SUFFIXES = (".json", ".safetensors", ".pt", ".pth", ".bin")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes zip archives


def resume_checkpoint(training_args: TrainingArguments) -> str | None:
    """The checkpoint to continue from: --resume_from_checkpoint if given, else the newest complete one."""
    given = training_args.resume_from_checkpoint
    if given:
        if not Path(given).is_dir():
            raise ConfigError(
                f"--resume_from_checkpoint {given} is not a folder; drop the flag to continue from the "
                "newest complete checkpoint in --output_dir"
            )
        problem = checkpoint_problem(Path(given))
        if problem:
            raise ConfigError(f"--resume_from_checkpoint {given}: {problem}; pass an earlier checkpoint")
        return given
    return _last_checkpoint(training_args)


def _last_checkpoint(training_args: TrainingArguments) -> str | None:
    """Rerunning the same command continues from the newest complete checkpoint in the output folder.

    The Trainer writes a checkpoint's trainer_state.json last, so a checkpoint without it was cut short (the
    process was killed while saving); one with a file cut short (a full disk, a crash before the data reached
    the disk) cannot be resumed from either. Either is removed, saying why, and the one before it is used.
    """
    output_dir = Path(training_args.output_dir)
    if not output_dir.is_dir():
        return None
    complete = []
    for folder in output_dir.glob("checkpoint-*"):
        if not (folder.is_dir() and folder.name.removeprefix("checkpoint-").isdigit()):
            continue
        problem = checkpoint_problem(folder)
        if problem is None:
            complete.append(folder)
            continue
        # Every process finds the same problems; only the first removes the folder.
        logger.warning("not resuming from %s: %s; removing it (it was not completely written)", folder, problem)
        if training_args.process_index == 0:
            shutil.rmtree(folder, ignore_errors=True)
    if not complete:
        return None
    checkpoint = max(complete, key=lambda folder: int(folder.name.removeprefix("checkpoint-")))
    logger.info("resuming from %s", checkpoint)
    return str(checkpoint)


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (a file missing or cut short), or None.

    Cheap: JSON files are parsed, safetensors headers checked against the file's size and torch.save files
    (zip archives: optimizer, scheduler, RNG states) opened at their central directory, which is written last.
    """
    state = checkpoint / TRAINER_STATE
    if not state.is_file():
        return f"no {TRAINER_STATE}"
    if not any((checkpoint / name).is_file() for name in CHECKPOINT_WEIGHTS):
        return f"no model weights ({' or '.join(CHECKPOINT_WEIGHTS)})"
    try:
        files = sorted(p for p in checkpoint.iterdir() if p.is_file())
    except OSError as err:  # removed meanwhile by another process
        return f"unreadable ({err.strerror or err})"
    for file in files:
        problem = _file_problem(file)
        if problem:
            return f"{file.name} is {problem}"
    return None


def _file_problem(file: Path) -> str | None:
    """Why one file of a checkpoint is unreadable (empty, cut short), or None: the checks cost next to nothing."""
    try:
        if file.suffix in CHECKED_SUFFIXES and file.stat().st_size == 0:
            return "empty"
        if file.suffix == ".json":
            json.loads(file.read_text())
        elif file.suffix == ".safetensors":
            with safe_open(str(file), "pt"):  # checks the header against the file's size
                pass
        elif file.suffix in (".pt", ".pth", ".bin"):
            with file.open("rb") as opened:
                zipped = opened.read(len(ZIP_MAGIC)) == ZIP_MAGIC  # else torch's legacy format: left to torch
            if zipped:
                with zipfile.ZipFile(file):  # reads the central directory, written last
                    pass
    except (OSError, ValueError, zipfile.BadZipFile, SafetensorError) as err:
        cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"cut short or unreadable ({cause})"
    return None
