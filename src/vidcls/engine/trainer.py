"""The transformers Trainer, adapted to uint8 clip batches and per-video metrics."""

from __future__ import annotations

import logging

from transformers import Trainer, TrainerCallback

from vidcls.config import ClipSpec
from vidcls.data.transforms import build_clip_augment
from vidcls.engine.batching import BatchMixer, augment_clips, prepare_pixels
from vidcls.engine.recipes import (
    Recipe,
    RepeatedSampler,
    head_lr_groups,
    layer_decay_groups,
    soft_target_cross_entropy,
)

logger = logging.getLogger(__name__)


class VideoTrainer(Trainer):
    """Trainer for uint8 clip batches: normalises them on the device, and keeps video indices for metrics.

    ``label_names`` is ("labels", "video_index"), so evaluation hands (labels, video_index) to
    ``compute_metrics``, which averages clip scores per video; the model never sees ``video_index``.

    ``recipe`` (default: the guide's) adds, on the device, RandAugment and random erasing (``Recipe.augmentation``)
    and MixUp/CutMix with label smoothing and a soft-target loss to training batches; layer-wise LR decay to the
    optimizer; repeated augmentation to the sampler.
    """

    def __init__(
        self,
        *args,
        clip_spec: ClipSpec,
        input_name: str,
        recipe: Recipe | None = None,
        head_lr: float | None = None,
        **kwargs,
    ):
        self.recipe = recipe or Recipe()
        self.head_lr = head_lr
        settings = kwargs.get("args")
        if settings is not None and settings.dataloader_num_workers == 0:
            # The guide's defaults keep workers alive between epochs; with no workers there is nothing to keep,
            # and torch's DataLoader refuses the combination ("persistent_workers option needs num_workers > 0").
            settings.dataloader_persistent_workers = False
        if self.recipe.soft_targets:
            # The Trainer's hook for a custom loss: it pops the labels and scales for accumulation and devices.
            kwargs.setdefault("compute_loss_func", soft_target_cross_entropy)
        super().__init__(*args, **kwargs)
        self.clip_spec = clip_spec
        self.input_name = input_name
        self.augment = build_clip_augment(self.recipe.augmentation(), clip_spec.mean)
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
        elif self.optimizer is None and self.head_lr is not None:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            groups = head_lr_groups(
                opt_model,
                self.head_lr,
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
