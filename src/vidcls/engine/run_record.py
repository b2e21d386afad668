"""What a training run records in its output folder, so that a rerun continues only the same run and evaluation
never scores the videos it was trained on.

``run.json`` holds the settings that decide the result (data, labels, model, clips, recipe, the Trainer's
arguments less those that only change speed or logging); a rerun resumes a checkpoint only when they match,
and otherwise says which differ. ``split.json`` holds the split: the layout options it was made with and the
files of each split, read back by ``vidcls evaluate``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME as TRAINER_STATE

from vidcls.data.discovery import VideoRecord
from vidcls.data.layouts import LayoutOptions
from vidcls.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
SPLIT_FILE = "split.json"
OVERWRITE_FLAG = "--overwrite_output_dir"
# How long to train: a rerun with another length continues the run (the Trainer resumes to the new end).
LENGTH = ("trainer.num_train_epochs", "trainer.max_steps")
SPLIT_OPTIONS = ("split_ratios", "group_pattern", "fold", "seed")  # LayoutOptions fields that decide a split
# TrainingArguments that change speed, logging or where things go, never the trained weights.
NOT_RESULT = {
    "output_dir", "logging_dir", "logging_strategy", "logging_steps", "logging_first_step", "logging_nan_inf_filter",
    "report_to", "run_name", "project", "trackio_space_id", "disable_tqdm", "save_total_limit", "save_safetensors",
    "save_on_each_node", "save_only_model", "resume_from_checkpoint", "dataloader_num_workers",
    "dataloader_persistent_workers", "dataloader_pin_memory", "dataloader_prefetch_factor",
    "per_device_eval_batch_size",
    "eval_accumulation_steps", "eval_delay", "eval_do_concat_batches", "push_to_hub", "hub_model_id", "hub_strategy",
    "hub_token", "hub_private_repo", "hub_always_push", "hub_revision", "local_rank", "ddp_timeout",
    "include_num_input_tokens_seen", "log_level", "log_level_replica", "log_on_each_node", "skip_memory_metrics",
    "print_config", "label_names",
}  # fmt: skip


def files_digest(records: list[VideoRecord]) -> str:
    """A short fingerprint of a split's videos (paths, labels and segments), independent of their order."""
    entries = sorted(f"{r.path}\t{r.label}\t{r.start}\t{r.end}" for r in records)
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]


def run_settings(
    *, splits: dict[str, list[VideoRecord]], labels: list[str], model: dict, clip: dict, recipe, training_args
):
    """The settings that decide what a run trains: compared key by key when a rerun would resume it."""
    training = {k: v for k, v in training_args.to_dict().items() if k not in NOT_RESULT}
    return {
        "labels": list(labels),
        **{f"data.{split}": files_digest(records) for split, records in splits.items()},
        **{f"model.{k}": v for k, v in model.items()},
        **{f"clip.{k}": v for k, v in clip.items()},
        **{f"recipe.{k}": v for k, v in asdict(recipe).items()},
        **{f"trainer.{k}": v for k, v in training.items()},
    }


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))  # tuples -> lists, enums -> text: as read back from disk


def check_rerun(output_dir: Path, settings: dict, resume: str | None, overwrite: bool) -> None:
    """Refuse to continue or overwrite a different run, and to silently redo (or skip) a finished one.

    Raises:
        ConfigError: naming the settings that differ (or that the run is finished) and ``--overwrite_output_dir``.
    """
    fresh = f"pass {OVERWRITE_FLAG} to start afresh there, or choose another --output_dir"
    if overwrite:
        return
    recorded_file = output_dir / RUN_FILE
    if resume is None:
        if (output_dir / "vidcls.json").is_file():
            raise ConfigError(f"--output_dir {output_dir} already holds a trained model; {fresh}")
        return
    if not recorded_file.is_file():
        logger.warning("resuming %s, which records no settings (made by an older vidcls): not checked", resume)
        return
    recorded, current = json.loads(recorded_file.read_text()), _jsonable(settings)
    differ = [key for key in sorted(set(recorded) | set(current)) if recorded.get(key) != current.get(key)]
    longer = [key for key in differ if key in LENGTH]  # training longer (or shorter) continues the same run
    differ = [key for key in differ if key not in LENGTH]
    if differ:
        shown = ", ".join(f"{key} ({recorded.get(key)!r} -> {current.get(key)!r})" for key in differ[:4])
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise ConfigError(
            f"--output_dir {output_dir} holds a run with other settings, so it cannot be resumed: {shown}{more}; "
            + fresh
        )
    state = json.loads((Path(resume) / TRAINER_STATE).read_text())
    if not longer and state.get("max_steps") and state.get("global_step", 0) >= state["max_steps"]:
        raise ConfigError(
            f"--output_dir {output_dir} holds a finished run of these settings ({state['global_step']} steps): "
            f"nothing is left to train; {fresh}"
        )


def start_afresh(output_dir: Path) -> None:
    """With --overwrite_output_dir: remove the checkpoints and records of the run there (nothing else)."""
    for checkpoint in output_dir.glob("checkpoint-*"):
        if checkpoint.is_dir():
            shutil.rmtree(checkpoint)
    for name in (RUN_FILE, SPLIT_FILE):
        (output_dir / name).unlink(missing_ok=True)


def write_records(output_dir: Path, settings: dict, data_dir: str, layout: LayoutOptions, splits: dict,
                  train_split: str) -> None:  # fmt: skip
    """run.json and split.json, written before training starts (a rerun after a crash compares against them)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RUN_FILE).write_text(json.dumps(_jsonable(settings), indent=1) + "\n")
    split = {
        "data_dir": str(data_dir),
        "layout": {name: getattr(layout, name) for name in SPLIT_OPTIONS},
        "train_split": train_split,
        "files": {name: sorted(str(Path(r.path).resolve()) for r in records) for name, records in splits.items()},
    }
    (output_dir / SPLIT_FILE).write_text(json.dumps(_jsonable(split), indent=1) + "\n")


def saved_layout(model_dir: Path, layout: LayoutOptions) -> LayoutOptions:
    """``layout`` with the split options the model was trained with (split.json), so evaluation splits alike."""
    path = Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        return layout
    saved = json.loads(path.read_text())["layout"]
    if saved["split_ratios"] is not None:
        saved["split_ratios"] = tuple(saved["split_ratios"])
    logger.info("splitting as the model was trained (%s): %s", path, saved)
    return replace(layout, **saved)


def check_not_trained_on(model_dir: Path, split: str, records: list[VideoRecord], allow: bool) -> None:
    """Refuse to evaluate a split holding videos the model was trained on (its training split, per split.json)."""
    path = Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    trained = set(saved["files"].get(saved["train_split"], []))
    seen = sorted({str(Path(r.path).resolve()) for r in records} & trained)
    if not seen:
        return
    message = (
        f"--eval_split {split}: {len(seen)} of its {len(records)} videos were used to train this model "
        f"(e.g. {seen[0]}), so its scores would be inflated"
    )
    if allow:
        logger.warning("%s; evaluating anyway (--allow_train_overlap)", message)
        return
    raise DatasetError(
        f"{message}; evaluate another split, pass the layout flags train was given, or --allow_train_overlap"
    )
