"""The settings of ``vidcls pretrain`` beyond TrainingArguments, and its TrainingArguments defaults: the VideoMAE
paper's pretraining recipe. Nothing here imports torch, so ``vidcls pretrain --help`` is instant.

Recipe: Tong et al., VideoMAE, NeurIPS 2022, https://arxiv.org/abs/2203.12602, appendix table "pre-training
setting": AdamW (0.9, 0.95), weight decay 0.05, base lr 1.5e-4 x batch / 256, cosine decay, warmup 40 of 800
epochs, tube masking at 90%, multi-scale crops and flips (Kinetics-400).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidcls.errors import ConfigError
from vidcls.settings import ClipFlags, DecodeFlags, LayoutFlags

# TrainingArguments defaults of pretrain; a flag given on the command line wins.
PRETRAIN_TRAINING_DEFAULTS = {
    "adam_beta2": 0.95,  # the paper's; MAE's too: a lower beta2 steadies the large reconstruction gradients
    "weight_decay": 0.05,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,  # a ratio of the steps: 40 of 800 epochs
    "num_train_epochs": 800,  # Kinetics-400's; the paper runs 3200 on UCF101's 9.5k videos, 2400 on SSv2
    "per_device_train_batch_size": 8,
    "eval_strategy": "no",  # nothing to score: the loss is the reconstruction's
    "save_strategy": "epoch",
    "load_best_model_at_end": False,
}


@dataclass
class PretrainDataArguments(DecodeFlags, ClipFlags, LayoutFlags):
    """The data flags of vidcls pretrain: the shared clip and layout groups, and where unlabelled videos are."""

    _argument_group_name = "data"

    data_dir: str = field(
        kw_only=True,
        metadata={
            "help": "Any folder of videos (a plain tree: labels are not needed), or a labelled dataset in any layout "
            "vidcls train reads, of which only --train_split is used: pretraining on videos you will evaluate on "
            "would inflate their scores."
        },
    )
    train_split: str = field(default="train", metadata={"help": "The split of a labelled dataset to pretrain on."})
    extra_unlabelled_dir: list[str] | None = field(
        default=None,
        metadata={"help": "More folders of videos to pretrain on, all of their videos: DIR [DIR ...] or DIR,DIR."},
    )
    hflip: bool = field(
        default=True, metadata={"help": "Random horizontal flips (labels play no part in pretraining)."}
    )


@dataclass
class PretrainModelArguments:
    """The masked autoencoder and its recipe."""

    _argument_group_name = "masked autoencoder (VideoMAE)"

    config_name: str | None = field(
        default=None,
        metadata={"help": "From scratch: tiny (0.8 M, for a CPU), base (the paper's ViT-B) or a VideoMAE config.json."},
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Continue from a VideoMAE checkpoint (hub id or folder); a decoder it lacks starts afresh."},
    )
    mask_ratio: float = field(default=0.9, metadata={"help": "Share of the tubes hidden from the encoder."})
    norm_pix_loss: bool = field(
        default=True, metadata={"help": "Reconstruct pixels normalised per patch (the paper's target)."}
    )
    base_learning_rate: float = field(
        default=1.5e-4,
        metadata={"help": "The learning rate is this x total batch / 256, unless --learning_rate is given."},
    )

    def __post_init__(self):
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"--mask_ratio must be between 0 and 1 (the paper: 0.9), got {self.mask_ratio}")
        if self.config_name and self.model_name_or_path:
            raise ConfigError("pass --config_name (from scratch) or --model_name_or_path (continue one), not both")
        if not self.base_learning_rate > 0:
            raise ConfigError(f"--base_learning_rate must be above 0, got {self.base_learning_rate}")


def scaled_learning_rate(base: float, per_device_batch: int, world_size: int, accumulation: int) -> float:
    """The paper's linear scaling rule: base x total batch / 256. Example: 1.5e-4, 8 x 1 x 1 -> 4.7e-6."""
    return base * per_device_batch * world_size * accumulation / 256
