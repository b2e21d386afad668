"""Fine-tune (or train from a config) a video classifier with the transformers Trainer."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from transformers import TrainingArguments, set_seed

from vidcls.config import Augmentation, ClipSpec, EvalViews
from vidcls.data.cache import FrameCache
from vidcls.data.dataset import ClipDataset
from vidcls.data.discovery import check_duplicate_files
from vidcls.data.layouts import LayoutOptions, load_dataset
from vidcls.data.validate import validate_dataset
from vidcls.engine.arguments import DataArguments, ModelArguments, OutputArguments, check_training_arguments
from vidcls.engine.batching import ClipCollator
from vidcls.engine.checkpoints import resume_checkpoint
from vidcls.engine.metrics import compute_metrics
from vidcls.engine.recipes import (
    RecipeArguments,
    apply_drop_path,
    resolve,
)
from vidcls.engine.report import plot_training_curves, write_model_card
from vidcls.engine.run_record import check_rerun, run_settings, start_afresh, write_records
from vidcls.engine.trainer import EpochSummary, VideoTrainer
from vidcls.engine.workers import choose_training_workers, decoding_workers, torch_threads
from vidcls.errors import ConfigError, DatasetError
from vidcls.models.factory import create_model, freeze_backbone, resolve_clip_spec, save_trained
from vidcls.models.families import family_of

logger = logging.getLogger(__name__)

# Training settings shown in the model card.
RECIPE_SETTINGS = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "warmup_steps",
    "weight_decay",
    "lr_scheduler_type",
    "seed",
)

# Always in run.json; the other ModelArguments (the linear probe's) only when set.
MODEL_SETTINGS = ("model_name_or_path", "config_name")

# Clips that fail mid-run are appended here by the data workers, then folded into skipped_videos.json.
SKIPPED_LOG = "skipped_videos.log.jsonl"


def train(
    data_args: DataArguments,
    model_args: ModelArguments,
    training_args: TrainingArguments,
    recipe_args: RecipeArguments | None = None,
    output_args: OutputArguments | None = None,
) -> dict:
    """Train, keep the best epoch by per-video validation accuracy, save it with its clip spec; return metrics.

    Rerunning into the same ``output_dir`` resumes the newest complete checkpoint only when the settings and data
    match the run recorded there (run.json); ``output_args.overwrite_output_dir`` starts afresh instead.
    """
    overwrite = (output_args or OutputArguments()).overwrite_output_dir
    # Label smoothing is the Trainer's own flag; vidcls's loss applies it (the Trainer's is then unused).
    recipe = resolve(recipe_args or RecipeArguments(), label_smoothing=training_args.label_smoothing_factor)
    if training_args.output_dir is None:
        raise ConfigError("--output_dir is required: the folder where the trained model is saved")
    check_training_arguments(training_args)
    if model_args.head_lr is not None and recipe.layer_decay < 1.0:
        raise ConfigError(
            f"--head_lr with --layer_decay {recipe.layer_decay}: layer decay already sets the head's rate "
            "(--learning_rate); drop one of them"
        )
    output_dir = Path(training_args.output_dir)
    if overwrite and training_args.process_index == 0:
        start_afresh(output_dir)
    # Every process decides alike: with --overwrite_output_dir none resumes what process 0 is removing.
    resume = None if overwrite else resume_checkpoint(training_args)  # drops checkpoints cut short
    layout = LayoutOptions.from_args(data_args)
    dataset = load_dataset(data_args.data_dir, layout)  # refuses groups found in two splits
    if not data_args.strict:  # --strict lists copies with every other error, below
        check_duplicate_files(dataset.splits, allow=data_args.allow_duplicates)  # and files found in two
    train_records = dataset.records(data_args.train_split, "--train_split")
    eval_records = dataset.records(data_args.eval_split, "--eval_split")
    labels = dataset.labels
    logger.info(
        "%d classes, %d training and %d validation videos", len(labels.names), len(train_records), len(eval_records)
    )

    # Seeded before the model exists: a new head (or a model from scratch) is initialised at random.
    set_seed(training_args.seed)
    model = create_model(model_args.model_name_or_path, model_args.config_name, labels.label2id)
    if model_args.freeze_backbone:
        freeze_backbone(model)
    if recipe.drop_path > 0 and model_args.freeze_backbone:
        logger.info("--freeze_backbone: no drop path (it would only add noise to the features the head learns from)")
    elif recipe.drop_path > 0:
        apply_drop_path(model, recipe.drop_path)
    spec = resolve_clip_spec(
        model,
        model_args.model_name_or_path,
        num_frames=data_args.num_frames,
        sample_rate=data_args.sample_rate,
    )
    family = family_of(model.config)
    settings = run_settings(
        splits={data_args.train_split: train_records, data_args.eval_split: eval_records},
        labels=labels.names,
        # The probe's settings only when set, so that runs recorded before they existed still resume.
        model={k: v for k, v in asdict(model_args).items() if k in MODEL_SETTINGS or v not in (None, False)},
        clip={**asdict(spec), "hflip": data_args.hflip, "eval_clips": data_args.clips},
        recipe=recipe,
        training_args=training_args,
    )
    check_rerun(output_dir, settings, resume, overwrite)
    check_output_dir(output_dir, model)
    if training_args.process_index == 0:
        write_records(output_dir, settings, data_args.data_dir, layout, dataset.splits, data_args.train_split)
    if data_args.strict:
        check_strictly(dataset.splits, dataset.labels, spec, data_args, training_args)
    train_set, eval_set = build_datasets(
        train_records, eval_records, spec, recipe.augmentation(data_args.hflip), data_args, output_dir
    )

    training_args.label_names = ["labels", "video_index"]
    trainer = VideoTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=ClipCollator(family.input_name),
        compute_metrics=compute_metrics,
        clip_spec=spec,
        input_name=family.input_name,
        recipe=recipe,
        head_lr=model_args.head_lr,
        callbacks=[EpochSummary()],
    )
    _, threads = choose_training_workers(trainer, train_set)  # --dataloader_num_workers unset: from measured costs
    with torch_threads(threads):
        result = trainer.train(resume_from_checkpoint=resume)
        history = list(trainer.state.log_history)  # before the best model's re-evaluation below
        metrics = {**result.metrics, **trainer.evaluate()}

    if trainer.is_world_process_zero():
        skipped = write_skipped_report(output_dir, [train_set, eval_set])
        metrics["skipped_videos"] = len(skipped)
        (output_dir / "train_results.json").write_text(json.dumps(metrics, indent=2) + "\n")
        plot_training_curves(history, output_dir / "training_curves.png")
        write_model_card(
            output_dir,
            data_dir=str(data_args.data_dir),
            labels=labels.names,
            counts={"training": len(train_set.records), "validation": len(eval_set.records)},
            base_model=model_args.model_name_or_path or f"{model_args.config_name} (from scratch)",
            settings={
                **asdict(spec),
                **recipe.card_settings(),
                **{k: getattr(training_args, k) for k in RECIPE_SETTINGS},
            },
            metrics=metrics,
        )
        # Last, so that with --push_to_hub the upload holds the whole folder: processor, clip spec and card.
        save_trained(model, spec, output_dir, save_weights=trainer.save_model)
        if train_set.cache:
            logger.info(train_set.cache.summary())
    return metrics


def check_strictly(splits, labels, spec: ClipSpec, data_args: DataArguments, training_args) -> None:
    """--strict: refuse to train on anything ``vidcls check`` calls an error, with the same checks.

    Every video of every split is hashed and decoded where its evaluation clips are taken, so files that open
    but are cut short or corrupt midway are found before training, not skipped during it.
    """
    report = validate_dataset(
        splits,
        labels,
        spec,
        num_workers=decoding_workers(training_args.dataloader_num_workers),
        progress=training_args.process_index == 0,
        allow_duplicates=data_args.allow_duplicates,
        eval_clips=data_args.clips,
    )
    for warning in report.warnings:
        logger.warning("%s", warning)
    if report.errors:
        raise DatasetError(
            f"--strict: {len(report.errors)} errors (as vidcls check {data_args.data_dir} reports them): "
            f"{'; '.join(report.errors)}; fix them, or drop --strict to skip unreadable videos"
        )


def build_datasets(
    train_records, eval_records, spec: ClipSpec, augmentation: Augmentation, data_args: DataArguments, output_dir: Path
):
    """Training and validation datasets; unreadable videos are set aside, or fail the run with --strict."""
    output_dir.mkdir(parents=True, exist_ok=True)
    cache = None
    if data_args.cache_dir:
        budget = int(data_args.cache_max_gb * 1e9)
        cache = FrameCache(data_args.cache_dir, budget, data_args.cache_max_ratio, data_args.cache_codec)
    failure_log = output_dir / SKIPPED_LOG
    failure_log.unlink(missing_ok=True)
    # Each video is also decoded at its last frame, so that files cut short are skipped (and listed) from the
    # start rather than trained on up to where they break; --strict already decoded every clip.
    options = {"cache": cache, "failure_log": failure_log, "decoder": data_args.decoder, "verify": not data_args.strict}
    train_set = ClipDataset(train_records, spec, train=True, augmentation=augmentation, **options)
    eval_set = ClipDataset(eval_records, spec, train=False, views=EvalViews(data_args.clips), **options)
    unreadable = train_set.skipped + eval_set.skipped
    if unreadable and data_args.strict:
        listed = "; ".join(s.reason for s in unreadable)
        raise DatasetError(f"--strict: {len(unreadable)} unreadable videos: {listed}")
    if not len(train_set) or not len(eval_set):
        raise DatasetError("no readable video left in the training or validation split; see the warnings above")
    return train_set, eval_set


def write_skipped_report(output_dir: Path, datasets: list[ClipDataset]) -> list[dict]:
    """Every video skipped (unreadable at start, or failing to decode mid-run) -> skipped_videos.json."""
    skipped = {s.path: s.reason for dataset in datasets for s in dataset.skipped}
    failure_log = output_dir / SKIPPED_LOG
    if failure_log.exists():
        for line in failure_log.read_text().splitlines():
            entry = json.loads(line)
            skipped.setdefault(entry["path"], entry["reason"])
        failure_log.unlink()
    report = [{"path": path, "reason": reason} for path, reason in sorted(skipped.items())]
    (output_dir / "skipped_videos.json").write_text(json.dumps(report, indent=2) + "\n")
    if report:
        logger.warning("%d videos were skipped; listed in %s", len(report), output_dir / "skipped_videos.json")
    return report


def check_output_dir(output_dir: Path, model) -> None:
    """Fail before any data is read when checkpoints could not be written."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / f".write_test_{os.getpid()}"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"--output_dir {output_dir} is not writable ({err.strerror or err})") from err
    # A checkpoint holds the weights and two AdamW moments, in float32.
    needed = 3 * 4 * sum(p.numel() for p in model.parameters())
    free = shutil.disk_usage(output_dir).free
    if free < needed:
        raise ConfigError(
            f"--output_dir {output_dir}: {free / 1e6:.0f} MB free, a checkpoint needs about {needed / 1e6:.0f} MB"
        )
