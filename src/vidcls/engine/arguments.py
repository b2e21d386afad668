"""The settings of vidcls train beyond TrainingArguments (data, model, recipe), the guide's defaults for
TrainingArguments, and the checks of TrainingArguments that fail early (before any data is read) rather than deep
inside the Trainer. torch is imported only where a value needs it, so ``vidcls train --help`` is instant."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field

from vidcls.errors import ConfigError
from vidcls.settings import ClipFlags, DecodeFlags, LayoutFlags

logger = logging.getLogger(__name__)


def guide_training_defaults() -> dict:
    """The guide's TrainingArguments; every TrainingArguments flag can still override them on the command line."""
    import torch

    from vidcls.engine.workers import AUTO

    cuda = torch.cuda.is_available()
    return {
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "learning_rate": 5e-5,
        "warmup_steps": 0.1,  # a float below 1 is a ratio of the total steps
        "logging_steps": 10,
        "load_best_model_at_end": True,
        "metric_for_best_model": "accuracy",  # per-video accuracy, see engine/metrics.py
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 8,
        # Chosen before training starts (engine/workers.py): on a CPU from the measured decode and step times, as
        # 2 workers on 2 cores slowed a 224 px model down; with a GPU every core but one, up to 8.
        "dataloader_num_workers": AUTO,
        "dataloader_persistent_workers": True,
        "dataloader_pin_memory": cuda,  # pinning only helps copies to a GPU
        # Without a GPU, say so: under torchrun this is what turns on multi-process CPU training (gloo).
        "use_cpu": not cuda,
        "report_to": ["tensorboard"] if importlib.util.find_spec("tensorboard") else "none",
        "remove_unused_columns": False,  # the collator needs the dataset's own keys
        "save_total_limit": 2,
    }


# Guide defaults that follow other flags when the command line leaves them unset: see fill_coupled_defaults.
COUPLED_DEFAULTS = ("save_strategy", "save_steps", "load_best_model_at_end")
HALF_PRECISION_FLAGS = ("fp16", "bf16", "fp16_full_eval", "bf16_full_eval")


def fill_coupled_defaults(values: dict) -> dict:
    """Checkpoints follow evaluation, and the best evaluation is kept where it can be; flags given win.

    The guide saves and evaluates every epoch and keeps the best: ``--eval_strategy steps --eval_steps 50`` alone
    then saves every 50 steps too, and ``--eval_strategy no`` (or ``--save_strategy no``) trains to the last step
    instead of failing on a default nobody set. ``values`` holds the parsed flags, None where unset.
    """
    values = dict(values)
    eval_strategy = _strategy(values.get("eval_strategy"))
    if values.get("save_strategy") is None:
        values["save_strategy"] = eval_strategy if eval_strategy != "no" else "epoch"  # the guide's
    save_strategy = _strategy(values["save_strategy"])
    if values.get("save_steps") is None:
        # TrainingArguments evaluates every logging_steps when eval_steps is unset.
        follows = save_strategy == eval_strategy == "steps"
        values["save_steps"] = (values.get("eval_steps") or values.get("logging_steps")) if follows else 500
    if values.get("load_best_model_at_end") is None:
        matching = save_strategy == "best" or (
            save_strategy == eval_strategy and (eval_strategy != "steps" or _multiple(values))
        )
        values["load_best_model_at_end"] = eval_strategy != "no" and save_strategy != "no" and matching
        if not values["load_best_model_at_end"]:
            logger.info(
                "keeping the last model, not the best: that needs a checkpoint at every evaluation "
                "(--eval_strategy %s, --save_strategy %s)",
                eval_strategy,
                save_strategy,
            )
    return values


def _strategy(value) -> str:
    """The strategy ("steps", "epoch", "no" or "best") from a flag's text or an IntervalStrategy/SaveStrategy."""
    return str(getattr(value, "value", value) or "no")


def _multiple(values: dict) -> bool:
    """Whether steps-based checkpoints fall on evaluations (load_best_model_at_end needs that)."""
    eval_steps = values.get("eval_steps") or values.get("logging_steps") or 1
    return float(values["save_steps"]) % float(eval_steps) == 0


def check_training_arguments(args) -> None:
    """Refuse, before any data is read, TrainingArguments that would fail (or do nothing useful) only later.

    Raises:
        ConfigError: half precision where training runs on the CPU, or a --report_to integration that is not
            installed.
    """
    import torch

    on_cpu = args.use_cpu or not torch.accelerator.is_available()
    for flag in HALF_PRECISION_FLAGS:
        if getattr(args, flag, False) and on_cpu:
            why = "--use_cpu is set" if args.use_cpu and torch.accelerator.is_available() else "no GPU is visible"
            raise ConfigError(f"--{flag} needs a GPU, and training would run on the CPU here ({why}); drop --{flag}")
    _check_report_to(args.report_to)


def _check_report_to(report_to) -> None:
    """Each --report_to integration must be installed: the Trainer only finds out once the data is read."""
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    for name in names:
        if name in ("none", "all"):  # "all": those installed
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            known = ", ".join(INTEGRATION_TO_CALLBACK)
            raise ConfigError(f"--report_to {name}: not a reporting integration; choose from {known}, all or none")
        try:
            INTEGRATION_TO_CALLBACK[name]()  # their constructors only check that the package imports
        except (ImportError, RuntimeError) as err:
            cause = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
            raise ConfigError(f"--report_to {name}: {cause}; install it, or pass --report_to none") from err


@dataclass
class DataArguments(DecodeFlags, ClipFlags, LayoutFlags):
    """The data flags of vidcls train: the shared clip and layout groups, and what only training needs."""

    _argument_group_name = "data"

    data_dir: str = field(
        kw_only=True,  # no default, after the groups' defaulted fields
        metadata={
            "help": "Dataset: DATA/{train,val,test}/<Class>/<video>; DATA/<Class>/<video> (split by group); "
            "UCF101/HMDB51 videos with their split lists; a .csv/.jsonl manifest (path,label[,group][,start,end]"
            "[,split]) or a folder with metadata.csv; a .tar.gz of any of these, or "
            "hf://datasets/<owner>/<repo>/<archive>.tar.gz."
        },
    )
    train_split: str = field(default="train", metadata={"help": "Folder of the training split."})
    eval_split: str = field(default="val", metadata={"help": "Folder of the split evaluated every epoch."})
    hflip: bool = field(
        default=True,
        metadata={"help": "Random horizontal flip in training; --hflip false when labels depend on direction."},
    )
    strict: bool = field(
        default=False,
        metadata={
            "help": "Fail before training on anything vidcls check calls an error (videos that cannot be opened, "
            "or that break where clips are taken; the same file in two splits), listing each, instead of "
            "skipping unreadable videos."
        },
    )
    allow_duplicates: bool = field(
        default=False,
        metadata={
            "help": "Train even when the same file (same content) is in two splits, with a warning: scores on the "
            "split holding the copy are then inflated. Without it, such a dataset is refused."
        },
    )


@dataclass
class ModelArguments:
    _argument_group_name = "model"

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of a pretrained video classifier, e.g. MCG-NJU/videomae-base."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Train from scratch from a config: 'tiny', a config.json or a hub id."}
    )
    freeze_backbone: bool = field(
        default=False,
        metadata={
            "help": "Train the head only (a linear probe): every weight of the pretrained backbone stays as loaded; "
            "the head is what the backbone lacks (VideoMAE: fc_norm and the classifier)."
        },
    )
    head_lr: float | None = field(
        default=None, metadata={"help": "Learning rate of the head; unset: --learning_rate, as the backbone's."}
    )

    def __post_init__(self):
        if self.head_lr is not None and not self.head_lr > 0:
            raise ConfigError(f"--head_lr must be above 0, got {self.head_lr}")


@dataclass
class OutputArguments:
    _argument_group_name = "output"

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start afresh in --output_dir, removing its checkpoints, instead of resuming them. A rerun "
            "resumes only a run of the same settings and data, and never retrains a finished one without this."
        },
    )


# Each knob's value when no flag and no preset sets it: the guide's behaviour.
OFF = {
    "layer_decay": 1.0,
    "drop_path": 0.0,
    "mixup_alpha": 0.0,
    "cutmix_alpha": 0.0,
    "label_smoothing": 0.0,
    "rand_augment": "off",
    "random_erasing": 0.0,
    "repeated_augmentation": 1,
}
PRESETS = {
    "guide": {},
    "videomae": {
        "layer_decay": 0.75,
        "drop_path": 0.1,
        "mixup_alpha": 0.8,
        "cutmix_alpha": 1.0,
        "label_smoothing": 0.1,
        # The paper's table says RandAug (9, 0.5); its code runs timm's "rand-m7-n4-mstd0.5-inc1": 4 ops, magnitude 7.
        "rand_augment": "4,7",
        "random_erasing": 0.25,
        "repeated_augmentation": 2,
    },
}
# TrainingArguments defaults a recipe sets when the command line leaves them unset (cli/train.py). AdamW's betas
# (0.9, 0.999) are the paper's and already the Trainer's default.
TRAINING_DEFAULTS = {
    "guide": {"weight_decay": 0.0, "label_smoothing_factor": 0.0},
    "videomae": {"weight_decay": 0.05, "label_smoothing_factor": 0.1},
}


def _help(text: str, paper: str) -> dict:
    return {"help": f"{text} Unset: the recipe's value. VideoMAE: {paper}."}


@dataclass
class RecipeArguments:
    """The training recipe; label smoothing is the Trainer's own --label_smoothing_factor (VideoMAE: 0.1)."""

    _argument_group_name = "recipe (the guide's, or the VideoMAE paper's fine-tuning)"

    recipe: str = field(
        default="guide",
        metadata={
            "help": "guide: the guide's settings. videomae: the VideoMAE paper's fine-tuning, every flag below at "
            "the paper's value, and --weight_decay 0.05 unless given (learning rate, epochs and schedule are "
            "left to you: the paper's 5e-4 x batch/256, 75 epochs, cosine, fit Kinetics-400). A flag below "
            "overrides the recipe."
        },
    )
    layer_decay: float | None = field(
        default=None,
        metadata=_help(
            "Layer-wise LR decay d: block i of L learns at lr*d^(L-i), the embeddings at lr*d^(L+1).", "0.75"
        ),
    )
    drop_path: float | None = field(
        default=None, metadata=_help("Stochastic depth rate of the last block, rising from 0 at the first.", "0.1")
    )
    mixup_alpha: float | None = field(
        default=None, metadata=_help("MixUp of training batches, lambda ~ Beta(alpha, alpha); 0 is off.", "0.8")
    )
    cutmix_alpha: float | None = field(
        default=None, metadata=_help("CutMix; with MixUp on too, each batch uses one of them at even odds.", "1.0")
    )
    rand_augment: str | None = field(
        default=None,
        metadata=_help(
            "RandAugment 'N,M': N ops at magnitude M of 10, one draw per clip; 'off'.",
            "4,7 (its code; RandAug (9, 0.5) in the paper)",
        ),
    )
    random_erasing: float | None = field(
        default=None, metadata=_help("Probability of erasing a random rectangle from every frame of a clip.", "0.25")
    )
    repeated_augmentation: int | None = field(
        default=None, metadata=_help("Each training video k times per epoch, each a new clip and augmentation.", "2")
    )

    def __post_init__(self):
        if self.recipe not in PRESETS:
            raise ConfigError(f"--recipe {self.recipe!r} is not a recipe; choose one of: {', '.join(PRESETS)}")
        if self.rand_augment is not None:
            parse_rand_augment(self.rand_augment)


def parse_rand_augment(value: str) -> tuple[int, int] | None:
    """'4,7' -> (4, 7); 'off' -> None."""
    if value.strip().lower() in ("off", "none", "0"):
        return None
    try:
        num_ops, magnitude = (int(part) for part in value.split(","))
    except ValueError:
        raise ConfigError(
            f"--rand_augment takes 'N,M' (ops, magnitude of 10; e.g. 4,7) or 'off', got {value!r}"
        ) from None
    return num_ops, magnitude
