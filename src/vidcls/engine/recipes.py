"""Training recipes: the guide's settings, or the VideoMAE paper's fine-tuning, each piece also a flag.

Precedence, as for the clip spec: an explicit flag > the recipe's preset > off. Knobs left unset stay None, so
they never override a preset. Where each piece runs:

- RandAugment and random erasing: on each uint8 training clip, on the device before normalising
  (``data/transforms.py`` builds them, ``engine/batching.py`` applies them): in the data workers they
  halved the loader's clips/s.
- MixUp/CutMix and label smoothing: on the normalised batch on the device (``engine/batching.py``), with the
  soft-target loss below.
- Drop path and layer-wise LR decay: on the created model and the optimizer's parameter groups (below).
- Repeated augmentation: ``RepeatedSampler`` (below).

The VideoMAE values are its Kinetics-400 ViT-B fine-tuning: Tong et al., "VideoMAE: Masked Autoencoders are
Data-Efficient Learners for Self-Supervised Video Pre-Training", NeurIPS 2022, https://arxiv.org/abs/2203.12602
(appendix, end-to-end fine-tuning settings), as run by its code: the defaults of
https://github.com/MCG-NJU/VideoMAE/blob/main/run_class_finetuning.py and the Kinetics-400 ViT-B script
scripts/kinetics/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_1600/finetune.sh.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from vidcls.config import Augmentation
from vidcls.engine.arguments import OFF, PRESETS, RecipeArguments, parse_rand_augment
from vidcls.errors import ConfigError
from vidcls.models.factory import head_parameter_names
from vidcls.models.families import FAMILIES, family_of

# Parameters that get no weight decay besides biases and norms, as in VideoMAE's code (timm's no_weight_decay).
NO_DECAY_SUFFIXES = ("cls_token", "mask_token", "position_embeddings", "time_embeddings")


@dataclass(frozen=True)
class Recipe:
    """The resolved training recipe; the defaults are the guide's (every piece off)."""

    name: str = "guide"
    layer_decay: float = 1.0
    drop_path: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    label_smoothing: float = 0.0
    rand_augment: tuple[int, int] | None = None
    random_erasing: float = 0.0
    repeated_augmentation: int = 1

    def __post_init__(self):
        repeats = self.repeated_augmentation
        checks = (
            ("layer_decay", 0.0 < self.layer_decay <= 1.0, "in (0, 1]; 1 is off"),
            ("drop_path", 0.0 <= self.drop_path < 1.0, "in [0, 1)"),
            ("mixup_alpha", self.mixup_alpha >= 0.0, ">= 0; 0 is off"),
            ("cutmix_alpha", self.cutmix_alpha >= 0.0, ">= 0; 0 is off"),
            ("label_smoothing_factor", 0.0 <= self.label_smoothing < 1.0, "in [0, 1)"),
            ("random_erasing", 0.0 <= self.random_erasing <= 1.0, "a probability in [0, 1]"),
            ("repeated_augmentation", isinstance(repeats, int) and repeats >= 1, "an integer >= 1; 1 is off"),
        )
        for name, ok, rule in checks:
            if not ok:
                value = getattr(self, name.removesuffix("_factor"))  # label_smoothing: the Trainer's flag name
                raise ConfigError(f"--{name} must be {rule}, got {value!r}")

    def augmentation(self, hflip: bool = True) -> Augmentation:
        """The clip augmentation of this recipe, with the random flip unless labels depend on direction."""
        return Augmentation(hflip=hflip, rand_augment=self.rand_augment, random_erasing=self.random_erasing)

    @property
    def soft_targets(self) -> bool:
        """True when training labels become (B, K) soft targets (MixUp, CutMix or label smoothing)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0 or self.label_smoothing > 0

    def card_settings(self) -> dict:
        """The recipe's name and every piece it turns on, for the model card."""
        guide = Recipe()
        on = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(guide, f.name)}
        return {"recipe": self.name, **on}


def resolve(args: RecipeArguments, label_smoothing: float | None = None) -> Recipe:
    """Explicit flag > the recipe's preset > off. ``label_smoothing`` is the Trainer's --label_smoothing_factor."""
    preset = PRESETS[args.recipe]
    flags = {name: getattr(args, name, None) for name in OFF} | {"label_smoothing": label_smoothing}
    values = {}
    for name, off in OFF.items():
        flag = flags[name]
        values[name] = flag if flag is not None else preset.get(name, off)
    values["rand_augment"] = parse_rand_augment(values["rand_augment"])
    return Recipe(name=args.recipe, **values)


class DropPath(nn.Module):
    """Stochastic depth: in training, skip a residual branch for a random ``rate`` of the samples, scale the rest."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return hidden
        keep = 1.0 - self.rate
        mask = hidden.new_empty((hidden.shape[0],) + (1,) * (hidden.dim() - 1)).bernoulli_(keep)  # (B, 1, ...)
        return hidden * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate:.4f}"


def _blocks(model, flag: str) -> tuple[nn.ModuleList, str]:
    """The model's transformer blocks (and their path under the base model), from the family table."""
    family = family_of(model.config)
    if not family.residual_branches:
        supported = ", ".join(sorted(name for name, f in FAMILIES.items() if f.residual_branches))
        raise ConfigError(f"{flag} is not supported for {family.model_type} models (only {supported}); drop the flag")
    path = family.residual_branches[0].split(".*.")[0]
    return model.base_model.get_submodule(path), path


def apply_drop_path(model, rate: float) -> None:
    """Stochastic depth on every residual branch of every block, rising linearly from 0 to ``rate`` (as timm).

    VideoMAE and ViViT have no drop path of their own: one is put after the dropout that ends each branch.
    TimeSformer and V-JEPA 2 have a ``drop_path`` module per block: it is replaced. The config is left as it is
    (TimeSformer's types its ``drop_path_rate`` as an int): drop path only acts in training, and the model card
    records the rate.
    """
    blocks, _ = _blocks(model, "--drop_path")
    rates = torch.linspace(0.0, rate, len(blocks)).tolist()
    for pattern in family_of(model.config).residual_branches:
        parent_path, _, name = pattern.split(".*.")[1].rpartition(".")
        for block, block_rate in zip(blocks, rates, strict=True):
            parent = block.get_submodule(parent_path)
            current = getattr(parent, name)
            drop = DropPath(block_rate).train(parent.training)  # a new module starts in training mode
            setattr(parent, name, nn.Sequential(current, drop) if isinstance(current, nn.Dropout) else drop)


def layer_depths(model) -> tuple[dict[str, int], int]:
    """Parameter name -> depth (embeddings 0, block i i + 1, the rest L + 1: final norm, pooler, head), and L."""
    blocks, path = _blocks(model, "--layer_decay")
    base = model.base_model
    depth = {id(p): i + 1 for i, block in enumerate(blocks) for p in block.parameters()}
    # The embeddings sit beside the blocks or one level up (V-JEPA 2: encoder.embeddings; others: embeddings).
    parts = path.split(".")[:-1]
    owners = [base.get_submodule(".".join(parts[:k])) for k in range(len(parts), -1, -1)]
    embeddings = next((owner.embeddings for owner in owners if hasattr(owner, "embeddings")), None)
    if embeddings is None:
        raise ConfigError(f"--layer_decay: no embeddings found beside {path} in {model.config.model_type}")
    depth.update({id(p): 0 for p in embeddings.parameters()})
    last = len(blocks) + 1
    return {name: depth.get(id(p), last) for name, p in model.named_parameters()}, len(blocks)


def layer_decay_groups(model, decay: float, *, lr: float, weight_decay: float, decay_names: set[str]) -> list[dict]:
    """AdamW parameter groups: lr * decay^(L + 1 - depth); no weight decay on biases, norms and tokens.

    As VideoMAE's code (BEiT's ``LayerDecayValueAssigner``): the embeddings learn at lr * decay^(L + 1), block i
    (from 0) at lr * decay^(L - i), the head at lr. The head's group comes first: the Trainer logs group 0's rate.
    """
    depths, num_blocks = layer_depths(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = name not in decay_names or param.dim() <= 1 or name.endswith(NO_DECAY_SUFFIXES)
        scale = decay ** (num_blocks + 1 - depths[name])
        key = (depths[name], no_decay)
        if key not in groups:
            groups[key] = {"params": [], "weight_decay": 0.0 if no_decay else weight_decay, "lr": lr * scale}
            groups[key]["lr_scale"] = scale
        groups[key]["params"].append(param)
    return [groups[key] for key in sorted(groups, key=lambda key: (-key[0], key[1]))]


def head_lr_groups(model, head_lr: float, *, weight_decay: float, decay_names: set[str]) -> list[dict]:
    """AdamW parameter groups: the head (``head_parameter_names``) at ``head_lr``, the backbone at the optimizer's
    default (--learning_rate); no weight decay where the Trainer would not put it. Frozen parameters are left out.
    """
    head = head_parameter_names(model)
    groups: dict[tuple[bool, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (name in head, name not in decay_names)
        if key not in groups:
            groups[key] = {"params": [], "weight_decay": 0.0 if key[1] else weight_decay}
            if key[0]:
                groups[key]["lr"] = head_lr
        groups[key]["params"].append(param)
    return [groups[key] for key in sorted(groups, reverse=True)]  # the head first: the Trainer logs group 0


class RepeatedSampler(torch.utils.data.Sampler[int]):
    """Every index ``repeats`` times per epoch, a video's copies next to each other, videos in a random order.

    Example: 3 videos, repeats=2 -> [2, 2, 0, 0, 1, 1] (the order drawn from seed + epoch). The dataset draws a new
    random clip and augmentation at every visit, so a batch holds k views of each of its videos, as VideoMAE's
    ``--num_sample`` does (which decodes once; here each view is a new clip).

    Under DDP every process draws the same order (the seed does not depend on the rank) and the Trainer's
    accelerate wrapper (``BatchSamplerShard``) gives process r the batches r, r + W, r + 2W, ...: no two processes
    see the same batch. The Trainer calls ``set_epoch`` at every epoch.
    """

    def __init__(self, num_items: int, repeats: int, seed: int = 0):
        self.num_items, self.repeats, self.seed = num_items, repeats, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_items * self.repeats

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_items, generator=generator)
        yield from order.repeat_interleave(self.repeats).tolist()


def soft_target_cross_entropy(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy with (B, K) soft targets; hard (B,) labels (evaluation) are one-hot, the usual loss.

    The Trainer's ``compute_loss_func``: with ``num_items_in_batch`` (clips over the accumulated batch) the sum is
    divided by it, as the models' own loss does, so gradient accumulation scales alike.
    """
    logits = outputs["logits"]  # (B, K)
    if labels.dim() == 1:
        labels = nn.functional.one_hot(labels, logits.shape[-1])
    per_clip = -(labels.float() * logits.float().log_softmax(dim=-1)).sum(dim=-1)  # (B,)
    if num_items_in_batch is None:
        return per_clip.mean()
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(per_clip.device)
    return per_clip.sum() / num_items_in_batch
