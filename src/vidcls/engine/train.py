"""Fine-tune (or train from a config) a video classifier with the transformers Trainer."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer import TRAINER_STATE_NAME as TRAINER_STATE
from transformers.trainer_utils import get_last_checkpoint

from vidcls.config import ClipSpec
from vidcls.data.cache import FrameCache
from vidcls.data.dataset import ClipDataset
from vidcls.data.layouts import LAYOUT_FLAG_HELP, LayoutOptions, load_dataset
from vidcls.data.transforms import build_clip_augment
from vidcls.engine.batching import BatchMixer, ClipCollator, augment_clips, prepare_pixels
from vidcls.engine.metrics import compute_metrics
from vidcls.engine.recipes import (
    Recipe,
    RecipeArguments,
    RepeatedSampler,
    apply_drop_path,
    layer_decay_groups,
    resolve,
    soft_target_cross_entropy,
)
from vidcls.engine.report import plot_training_curves, write_model_card
from vidcls.errors import ConfigError, DatasetError
from vidcls.models.factory import create_model, resolve_clip_spec, save_processor
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

# Clips that fail mid-run are appended here by the data workers, then folded into skipped_videos.json.
SKIPPED_LOG = "skipped_videos.log.jsonl"

# The guide's settings; every TrainingArguments flag can still override them on the command line.
GUIDE_TRAINING_DEFAULTS = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "learning_rate": 5e-5,
    "warmup_steps": 0.1,  # a float below 1 is a ratio of the total steps
    "logging_steps": 10,
    "load_best_model_at_end": True,
    "metric_for_best_model": "accuracy",  # per-video accuracy, see engine/metrics.py
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "dataloader_num_workers": 2,
    "dataloader_persistent_workers": True,
    "dataloader_pin_memory": torch.cuda.is_available(),  # pinning only helps copies to a GPU
    # Without a GPU, say so: under torchrun this is what turns on multi-process CPU training (gloo).
    "use_cpu": not torch.cuda.is_available(),
    "report_to": ["tensorboard"] if importlib.util.find_spec("tensorboard") else "none",
    "remove_unused_columns": False,  # the collator needs the dataset's own keys
    "save_total_limit": 2,
}


@dataclass
class DataArguments:
    data_dir: str = field(
        metadata={
            "help": "Dataset: DATA/{train,val,test}/<Class>/<video>; DATA/<Class>/<video> (split by group); "
            "UCF101/HMDB51 videos with their split lists; a .csv/.jsonl manifest (path,label[,group][,start,end]"
            "[,split]) or a folder with metadata.csv; a .tar.gz of any of these, or "
            "hf://datasets/<owner>/<repo>/<archive>.tar.gz."
        }
    )
    train_split: str = field(default="train", metadata={"help": "Folder of the training split."})
    eval_split: str = field(default="val", metadata={"help": "Folder of the split evaluated every epoch."})
    num_frames: int | None = field(default=None, metadata={"help": "Frames per clip (default: the model's)."})
    sample_rate: int = field(default=4, metadata={"help": "Take every n-th frame at the video's own fps."})
    eval_clips: int = field(default=4, metadata={"help": "Evenly spaced clips per video when evaluating."})
    hflip: bool = field(
        default=True,
        metadata={"help": "Random horizontal flip in training; --hflip false when labels depend on direction."},
    )
    strict: bool = field(
        default=False,
        metadata={"help": "Fail before training, listing every unreadable video, instead of skipping them."},
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Keep decoded frames here (reduced size) so later epochs skip decoding."}
    )
    cache_max_gb: float = field(
        default=50.0, metadata={"help": "Disk budget of --cache_dir; videos past it are decoded."}
    )
    decoder: str = field(
        default="pyav", metadata={"help": "pyav, or torchcodec (falls back to PyAV if it cannot load)."}
    )
    # Layout options (single folder split by group, split lists, manifests) go below.
    split_ratios: str | None = field(
        default=None, metadata={"help": LAYOUT_FLAG_HELP["split_ratios"], "aliases": ["--split"]}
    )
    group_pattern: str | None = field(default=None, metadata={"help": LAYOUT_FLAG_HELP["group_pattern"]})
    fold: int = field(default=1, metadata={"help": LAYOUT_FLAG_HELP["fold"]})
    split_seed: int = field(default=0, metadata={"help": LAYOUT_FLAG_HELP["split_seed"]})


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of a pretrained video classifier, e.g. MCG-NJU/videomae-base."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Train from scratch from a config: 'tiny', a config.json or a hub id."}
    )


class VideoTrainer(Trainer):
    """Trainer for uint8 clip batches: normalises them on the device, and keeps video indices for metrics.

    ``label_names`` is ("labels", "video_index"), so evaluation hands (labels, video_index) to
    ``compute_metrics``, which averages clip scores per video; the model never sees ``video_index``.

    ``recipe`` (default: the guide's) adds, on the device, RandAugment and random erasing (from ``clip_spec``)
    and MixUp/CutMix with label smoothing and a soft-target loss to training batches; layer-wise LR decay to the
    optimizer; repeated augmentation to the sampler.
    """

    def __init__(self, *args, clip_spec: ClipSpec, input_name: str, recipe: Recipe | None = None, **kwargs):
        self.recipe = recipe or Recipe()
        if self.recipe.soft_targets:
            # The Trainer's hook for a custom loss: it pops the labels and scales for accumulation and devices.
            kwargs.setdefault("compute_loss_func", soft_target_cross_entropy)
        super().__init__(*args, **kwargs)
        self.clip_spec = clip_spec
        self.input_name = input_name
        self.augment = build_clip_augment(clip_spec)
        self.mixer = None
        if self.recipe.soft_targets:
            self.mixer = BatchMixer(
                self.model.config.num_labels,
                mixup_alpha=self.recipe.mixup_alpha,
                cutmix_alpha=self.recipe.cutmix_alpha,
                label_smoothing=self.recipe.label_smoothing,
                partner_shift=self.recipe.repeated_augmentation,
            )

    def _prepare_inputs(self, inputs):
        inputs = super()._prepare_inputs(inputs)
        if not inputs:
            return inputs
        training = self.model.training  # evaluation: no augmentation, hard labels
        if self.augment is not None and training:
            inputs = augment_clips(inputs, self.input_name, self.augment)  # uint8, one draw per clip
        inputs = prepare_pixels(inputs, self.input_name, self.clip_spec)
        if self.mixer is not None and training:
            inputs = self.mixer(inputs, self.input_name)
        return inputs

    def create_optimizer(self, model=None):
        opt_model = self.model if model is None else model
        if self.optimizer is None and self.recipe.layer_decay < 1.0:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            groups = layer_decay_groups(
                opt_model,
                self.recipe.layer_decay,
                lr=self.args.learning_rate,
                weight_decay=self.args.weight_decay,
                decay_names=set(self.get_decay_parameter_names(opt_model)),
            )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return super().create_optimizer(model)

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.recipe.repeated_augmentation > 1 and dataset is not None:
            seed = self.args.seed if self.args.data_seed is None else self.args.data_seed
            return RepeatedSampler(len(dataset), self.recipe.repeated_augmentation, seed=seed)
        return super()._get_train_sampler(train_dataset)

    def compute_loss(self, model, inputs, *args, **kwargs):
        inputs = {k: v for k, v in inputs.items() if k != "video_index"}
        return super().compute_loss(model, inputs, *args, **kwargs)

    def _load_weights(self, checkpoint: str) -> None:
        # The Trainer reloads checkpoints with a non-strict load_state_dict, which silently skips weights saved
        # under legacy names (VideoMAE's q_bias/v_bias), so the "best" model kept the last step's biases.
        # from_pretrained maps those names; copy its weights over strictly.
        loaded = type(self.model).from_pretrained(checkpoint)
        self.model.load_state_dict(loaded.state_dict())

    def _load_best_model(self) -> None:
        logger.info("restoring the best model: %s (%s)", self.state.best_model_checkpoint, self.state.best_metric)
        self._load_weights(self.state.best_model_checkpoint)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        self._load_weights(resume_from_checkpoint)

    def prediction_step(self, model, inputs, *args, **kwargs):
        if not inputs:  # a batch whose clips all failed to decode
            return None, None, None
        return super().prediction_step(model, inputs, *args, **kwargs)


def train(
    data_args: DataArguments,
    model_args: ModelArguments,
    training_args: TrainingArguments,
    recipe_args: RecipeArguments | None = None,
) -> dict:
    """Train, keep the best epoch by per-video validation accuracy, save it with its clip spec; return metrics."""
    recipe = resolve(recipe_args or RecipeArguments())
    if training_args.output_dir is None:
        raise ConfigError("--output_dir is required: the folder where the trained model is saved")
    layout = LayoutOptions.from_flags(
        data_args.split_ratios, data_args.group_pattern, data_args.fold, data_args.split_seed
    )
    dataset = load_dataset(data_args.data_dir, layout)  # refuses groups found in two splits
    train_records = dataset.records(data_args.train_split, "--train_split")
    eval_records = dataset.records(data_args.eval_split, "--eval_split")
    labels = dataset.labels
    logger.info(
        "%d classes, %d training and %d validation videos", len(labels.names), len(train_records), len(eval_records)
    )

    # Seeded before the model exists: a new head (or a model from scratch) is initialised at random.
    set_seed(training_args.seed)
    model = create_model(model_args.model_name_or_path, model_args.config_name, labels.label2id)
    if recipe.drop_path > 0:
        apply_drop_path(model, recipe.drop_path)
    spec = resolve_clip_spec(
        model,
        model_args.model_name_or_path,
        num_frames=data_args.num_frames,
        sample_rate=data_args.sample_rate,
        eval_clips=data_args.eval_clips,
        hflip=data_args.hflip,
        rand_augment=recipe.rand_augment,
        random_erasing=recipe.random_erasing or None,
    )
    family = family_of(model.config)
    output_dir = Path(training_args.output_dir)
    check_output_dir(output_dir, model)
    train_set, eval_set = build_datasets(train_records, eval_records, spec, data_args, output_dir)

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
        callbacks=[EpochSummary()],
    )
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(training_args))
    history = list(trainer.state.log_history)  # before the best model's re-evaluation below
    metrics = {**result.metrics, **trainer.evaluate()}

    if trainer.is_world_process_zero():
        save_processor(model, spec, output_dir)
        spec.save(output_dir)
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
        trainer.save_model(output_dir)
        if train_set.cache:
            logger.info(train_set.cache.summary())
    return metrics


class EpochSummary(TrainerCallback):
    """One log line per evaluation with the per-video and per-clip accuracy side by side."""

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if state.is_world_process_zero and metrics and "eval_accuracy" in metrics:
            logger.info(
                "epoch %.2f: validation accuracy per video %.4f, per clip %.4f (%d videos)",
                state.epoch or 0,
                metrics["eval_accuracy"],
                metrics["eval_clip_accuracy"],
                metrics["eval_num_videos"],
            )


def build_datasets(train_records, eval_records, spec: ClipSpec, data_args: DataArguments, output_dir: Path):
    """Training and validation datasets; unreadable videos are set aside, or fail the run with --strict."""
    output_dir.mkdir(parents=True, exist_ok=True)
    cache = FrameCache(data_args.cache_dir, int(data_args.cache_max_gb * 1e9)) if data_args.cache_dir else None
    failure_log = output_dir / SKIPPED_LOG
    failure_log.unlink(missing_ok=True)
    options = {"cache": cache, "failure_log": failure_log, "decoder": data_args.decoder}
    train_set = ClipDataset(train_records, spec, train=True, **options)
    eval_set = ClipDataset(eval_records, spec, train=False, **options)
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


def _last_checkpoint(training_args: TrainingArguments) -> str | None:
    """Rerunning the same command continues from the newest complete checkpoint in the output folder.

    The Trainer writes a checkpoint's trainer_state.json last, so a checkpoint without it was cut short (the
    process was killed while saving): it is removed rather than resumed from.
    """
    output_dir = Path(training_args.output_dir)
    if not output_dir.is_dir():
        return None
    for partial in output_dir.glob("checkpoint-*"):
        if partial.is_dir() and not (partial / TRAINER_STATE).exists() and training_args.process_index == 0:
            logger.warning("removing %s: it was not completely written", partial)
            shutil.rmtree(partial, ignore_errors=True)
    checkpoint = get_last_checkpoint(str(output_dir))
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    return checkpoint


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
