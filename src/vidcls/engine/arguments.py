"""The settings of vidcls train beyond TrainingArguments, and the guide's defaults for TrainingArguments."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field

import torch

from vidcls.data.layouts import LAYOUT_FLAG_HELP, LayoutOptions

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
    # 2 decoding workers feed about 130 clips/s of 224 px: enough for a CPU, a third of what a GPU trains
    # VideoMAE-base at; with CUDA, up to 8 (one core is left to the training process).
    "dataloader_num_workers": min(8, max(2, (os.cpu_count() or 2) - 1)) if torch.cuda.is_available() else 2,
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
    # Archives and manifests: what reading the dataset may take (LayoutOptions.from_args reads these too).
    max_extract_gb: float = field(
        default=LayoutOptions.max_extract_gb, metadata={"help": LAYOUT_FLAG_HELP["max_extract_gb"]}
    )
    max_archive_members: int = field(
        default=LayoutOptions.max_archive_members, metadata={"help": LAYOUT_FLAG_HELP["max_archive_members"]}
    )
    allow_outside_paths: bool = field(default=False, metadata={"help": LAYOUT_FLAG_HELP["allow_outside_paths"]})


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of a pretrained video classifier, e.g. MCG-NJU/videomae-base."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Train from scratch from a config: 'tiny', a config.json or a hub id."}
    )
