"""Masked-autoencoder pretraining (VideoMAE) on the user's own videos, with the loader, cache, checkpoints and resume
of ``vidcls train``.

The output folder holds a ``VideoMAEForPreTraining`` (loads in transformers as such), its video processor and clip
spec: ``vidcls train --model_name_or_path P`` fine-tunes its encoder under a new head.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import Trainer, TrainingArguments, set_seed

from vidcls.config import Augmentation, ClipSpec
from vidcls.data.cache import FrameCache
from vidcls.data.dataset import ClipDataset
from vidcls.data.unlabelled import pretraining_videos, split_folder_list
from vidcls.engine.arguments import OutputArguments, check_training_arguments
from vidcls.engine.batching import ClipCollator, prepare_pixels
from vidcls.engine.checkpoints import resume_checkpoint
from vidcls.engine.pretrain_arguments import PretrainDataArguments, PretrainModelArguments
from vidcls.engine.report import plot_training_curves
from vidcls.engine.run_record import check_rerun, run_settings, start_afresh, write_records
from vidcls.engine.train import SKIPPED_LOG, check_output_dir, write_skipped_report
from vidcls.engine.trainer import VideoTrainer
from vidcls.engine.workers import choose_training_workers, torch_threads
from vidcls.errors import ConfigError, DatasetError
from vidcls.models.factory import resolve_clip_spec, save_trained
from vidcls.models.pretraining import create_pretraining_model, tube_mask

logger = logging.getLogger(__name__)

INPUT_NAME = "pixel_values"  # VideoMAE's, the one family with a pretraining head
RESULTS_FILE = "pretrain_results.json"


class MaskedVideoTrainer(Trainer):
    """Trainer for masked-autoencoder batches: normalises uint8 clips on the device and adds a tube mask per clip.

    Masks are drawn on the device from torch's generator, which the Trainer seeds and saves in its checkpoints, so a
    resumed run draws the masks it would have drawn.
    """

    def __init__(self, *args, clip_spec: ClipSpec, mask_ratio: float, **kwargs):
        settings = kwargs.get("args")
        if settings is not None and settings.dataloader_num_workers == 0:
            settings.dataloader_persistent_workers = False  # torch's DataLoader refuses them without workers
        super().__init__(*args, **kwargs)
        # VideoMAE's MSE ignores num_items_in_batch: the Trainer must scale the loss for gradient accumulation.
        self.model_accepts_loss_kwargs = False
        self.clip_spec = clip_spec
        self.mask_ratio = mask_ratio

    # The Trainer's resume loads non-strictly and skips VideoMAE's legacy q_bias/v_bias names, so a resumed run
    # went on with its initial attention biases: reload as VideoTrainer does, strictly.
    _load_weights = VideoTrainer._load_weights
    _load_from_checkpoint = VideoTrainer._load_from_checkpoint

    def _prepare_inputs(self, inputs):
        inputs = super()._prepare_inputs(inputs)
        pixels = prepare_pixels(inputs, INPUT_NAME, self.clip_spec)[INPUT_NAME]  # (B, T, C, H, W) float
        mask = tube_mask(self.model.config, len(pixels), self.mask_ratio, device=pixels.device)  # (B, T' * P)
        return {INPUT_NAME: pixels, "bool_masked_pos": mask}  # labels and video indices: nothing to score


def pretrain(
    data_args: PretrainDataArguments,
    model_args: PretrainModelArguments,
    training_args: TrainingArguments,
    output_args: OutputArguments | None = None,
) -> dict:
    """Pretrain a VideoMAE masked autoencoder on unlabelled videos; save it in ``training_args.output_dir``.

    Rerunning into the same folder resumes its newest complete checkpoint when the settings and videos match
    (run.json), as ``vidcls train`` does; ``output_args.overwrite_output_dir`` starts afresh. Returns the metrics.
    """
    overwrite = (output_args or OutputArguments()).overwrite_output_dir
    if training_args.output_dir is None:
        raise ConfigError("--output_dir is required: the folder where the pretrained model is saved")
    check_training_arguments(training_args)
    output_dir = Path(training_args.output_dir)
    if overwrite and training_args.process_index == 0:
        start_afresh(output_dir)
    # Every process decides alike: with --overwrite_output_dir none resumes what process 0 is removing.
    resume = None if overwrite else resume_checkpoint(training_args)  # drops checkpoints cut short
    layout = data_args.layout()
    extra = split_folder_list(data_args.extra_unlabelled_dir)
    videos = pretraining_videos(data_args.data_dir, layout, data_args.train_split, extra)
    logger.info("pretraining on %d videos: %s", len(videos.records), "; ".join(videos.sources))
    if videos.left_out:
        logger.info(
            "not used: %s (pretraining on videos you evaluate on would inflate their scores; "
            "--extra_unlabelled_dir adds a folder on purpose)",
            ", ".join(videos.left_out),
        )

    set_seed(training_args.seed)  # the model's initial weights
    model = create_pretraining_model(
        model_args.model_name_or_path, model_args.config_name, norm_pix_loss=model_args.norm_pix_loss
    )
    spec = resolve_clip_spec(
        model,
        model_args.model_name_or_path,
        num_frames=data_args.num_frames,
        sample_rate=data_args.sample_rate,
    )
    tube_mask(model.config, 1, model_args.mask_ratio)  # a ratio that hides none or all: say so now
    logger.info(
        "learning rate %.3g, batch %d x %d processes x %d accumulated, %s epochs, mask ratio %.2f",
        training_args.learning_rate,
        training_args.per_device_train_batch_size,
        training_args.world_size,
        training_args.gradient_accumulation_steps,
        training_args.num_train_epochs,
        model_args.mask_ratio,
    )
    settings = run_settings(
        splits={"pretrain": videos.records},
        labels=[],
        model={k: v for k, v in asdict(model_args).items() if k != "mask_ratio"},
        clip={**asdict(spec), "hflip": data_args.hflip},
        recipe=Masking(model_args.mask_ratio),
        training_args=training_args,
    )
    check_rerun(output_dir, settings, resume, overwrite)
    check_output_dir(output_dir, model)
    if training_args.process_index == 0:
        write_records(output_dir, settings, data_args.data_dir, layout, {"pretrain": videos.records}, "pretrain")
    train_set = build_pretraining_set(videos.records, spec, data_args, output_dir)
    if len(train_set) < training_args.per_device_train_batch_size:
        logger.warning(
            "%d readable videos, fewer than one batch of %d: every step sees them all",
            len(train_set),
            training_args.per_device_train_batch_size,
        )

    training_args.label_names = []
    trainer = MaskedVideoTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        data_collator=ClipCollator(INPUT_NAME),
        clip_spec=spec,
        mask_ratio=model_args.mask_ratio,
    )
    _, threads = choose_training_workers(trainer, train_set)  # --dataloader_num_workers unset: from measured costs
    with torch_threads(threads):
        result = trainer.train(resume_from_checkpoint=resume)
    metrics = {**result.metrics, "videos": len(train_set.records)}
    if trainer.is_world_process_zero():
        metrics["skipped_videos"] = len(write_skipped_report(output_dir, [train_set]))
        metrics["loss_history"] = [
            {"step": entry["step"], "loss": entry["loss"]} for entry in trainer.state.log_history if "loss" in entry
        ]
        (output_dir / RESULTS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        plot_training_curves(list(trainer.state.log_history), output_dir / "training_curves.png")
        # Last, as in train: with --push_to_hub the upload holds the whole folder.
        save_trained(model, spec, output_dir, save_weights=trainer.save_model)
        if train_set.cache:
            logger.info(train_set.cache.summary())
    return metrics


@dataclass(frozen=True)
class Masking:
    """The masking, recorded in run.json as a training run's recipe is."""

    mask_ratio: float


def build_pretraining_set(records, spec: ClipSpec, data_args: PretrainDataArguments, output_dir: Path) -> ClipDataset:
    """Training clips (random scale crops and flips) of every readable video; those that cannot be read are set
    aside and listed in skipped_videos.json, as in ``vidcls train``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    cache = None
    if data_args.cache_dir:
        budget = int(data_args.cache_max_gb * 1e9)
        cache = FrameCache(data_args.cache_dir, budget, data_args.cache_max_ratio, data_args.cache_codec)
    failure_log = output_dir / SKIPPED_LOG
    failure_log.unlink(missing_ok=True)
    dataset = ClipDataset(
        records,
        spec,
        train=True,
        augmentation=Augmentation(hflip=data_args.hflip),
        cache=cache,
        failure_log=failure_log,
        decoder=data_args.decoder,
        verify=True,
    )
    if not len(dataset):
        raise DatasetError("no readable video to pretrain on; see the warnings above")
    return dataset
