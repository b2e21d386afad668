"""Build a classifier for a dataset's labels: from a hub id or folder (new head), or from a config."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import AutoConfig, AutoModelForVideoClassification, AutoVideoProcessor, VideoMAEConfig
from transformers.models.auto.video_processing_auto import (
    VIDEO_PROCESSOR_MAPPING_NAMES,
    video_processor_class_from_name,
)

from vidcls.config import CLIP_SPEC_FILE, ClipSpec
from vidcls.errors import ConfigError
from vidcls.models.families import family_of, frames_of, size_of

logger = logging.getLogger(__name__)


def tiny_videomae_config() -> VideoMAEConfig:
    """A 0.8 M-parameter VideoMAE that trains from scratch on a CPU in minutes.

    32 px frames in 8 px patches, 16 frames in tubelets of 2: 8 x 4 x 4 = 128 tokens, 4 layers of width 128.
    """
    return VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=16,
        tubelet_size=2,
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=256,
        use_mean_pooling=True,
    )


PRESETS = {"tiny": tiny_videomae_config}


def _load_config(config_name: str):
    if config_name in PRESETS:
        return PRESETS[config_name]()
    try:
        return AutoConfig.from_pretrained(config_name)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"--config_name {config_name}: not a preset ({', '.join(PRESETS)}), config file or folder ({err})"
        ) from err


def _load_processor(model_name_or_path: str | None):
    """The checkpoint's own video (or image) processor, for its mean, std and size; None if it has none."""
    if not model_name_or_path:
        return None
    try:
        return AutoVideoProcessor.from_pretrained(model_name_or_path)
    except (OSError, ValueError, KeyError) as err:
        logger.info("no video processor in %s (%s); using defaults", model_name_or_path, err)
        return None


def create_model(model_name_or_path: str | None, config_name: str | None, label2id: dict[str, int]):
    """A video classifier for ``label2id``: pretrained weights with a new head, or a fresh model from a config."""
    id2label = {i: name for name, i in label2id.items()}
    labels = {"label2id": label2id, "id2label": id2label, "num_labels": len(label2id)}
    if config_name:
        config = _load_config(config_name)
        for key, value in labels.items():
            setattr(config, key, value)
        family_of(config)
        return AutoModelForVideoClassification.from_config(config)
    if not model_name_or_path:
        raise ConfigError("pass --model_name_or_path (a hub id or folder) or --config_name (e.g. tiny)")
    try:
        config = AutoConfig.from_pretrained(model_name_or_path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"--model_name_or_path {model_name_or_path}: cannot load its config ({err})") from err
    family_of(config)
    # The pretrained head (e.g. Kinetics-400) does not fit the dataset's labels: a new one is initialised.
    return AutoModelForVideoClassification.from_pretrained(model_name_or_path, ignore_mismatched_sizes=True, **labels)


def head_parameter_names(model) -> set[str]:
    """The classifier's own parameters: those outside its pretrained backbone (``model.base_model``).

    VideoMAE: fc_norm and classifier; V-JEPA 2: the attentive pooler and classifier.
    """
    backbone = {id(p) for p in model.base_model.parameters()}
    return {name for name, p in model.named_parameters() if id(p) not in backbone}


def freeze_backbone(model) -> None:
    """Only the head learns: the backbone's parameters stop taking gradients (the optimizer then skips them)."""
    head = head_parameter_names(model)
    for name, param in model.named_parameters():
        param.requires_grad_(name in head)


def resolve_clip_spec(model, model_name_or_path: str | None = None, **overrides) -> ClipSpec:
    """Explicit flags (not None) > the checkpoint's processor > the model config > ClipSpec defaults."""
    config = model.config
    family = family_of(config)
    values = {"num_frames": frames_of(config), "image_size": size_of(config)}
    processor = _load_processor(model_name_or_path)
    if processor is not None:
        values["mean"] = tuple(processor.image_mean)
        values["std"] = tuple(processor.image_std)
    values.update({k: v for k, v in overrides.items() if v is not None})
    spec = ClipSpec(**values)
    if family.fixed_frames and spec.num_frames != frames_of(config):
        raise ConfigError(
            f"--num_frames {spec.num_frames}: {config.model_type} models take exactly {frames_of(config)} frames "
            "(their position embeddings are sized for it); drop the flag or pick another model"
        )
    setattr(config, family.frames_attr, spec.num_frames)
    return spec


def save_processor(model, spec: ClipSpec, output_dir: str | Path) -> None:
    """Write a video processor matching ``spec``, so ``transformers.pipeline`` prepares frames as vidcls does."""
    family = family_of(model.config)
    names = family.video_processor or VIDEO_PROCESSOR_MAPPING_NAMES[family.model_type]
    processor_class = video_processor_class_from_name(names["torchvision"] if isinstance(names, dict) else names)
    processor = processor_class(
        size={"height": spec.image_size, "width": spec.image_size},
        crop_size={"height": spec.image_size, "width": spec.image_size},
        do_center_crop=False,
        image_mean=list(spec.mean),
        image_std=list(spec.std),
    )
    processor.save_pretrained(output_dir)


def trained_config(model_dir: str | Path):
    """The config (labels, family) of a model saved by ``vidcls train``, without loading its weights."""
    model_dir = Path(model_dir)
    if not (model_dir / CLIP_SPEC_FILE).is_file():
        raise ConfigError(f"--model_dir {model_dir}: no {CLIP_SPEC_FILE} there; is it the output of vidcls train?")
    config = AutoConfig.from_pretrained(model_dir)
    if any(name.endswith("ForPreTraining") for name in config.architectures or []):
        raise ConfigError(
            f"--model_dir {model_dir} holds a pretrained encoder (vidcls pretrain), which has no classifier; "
            f"fine-tune it first: vidcls train --model_name_or_path {model_dir} --data_dir DATA --output_dir RUN"
        )
    return config


def save_trained(model, spec: ClipSpec, output_dir: str | Path, save_weights=None) -> Path:
    """Write the folder ``load_trained`` reads: video processor, clip specification, then config and weights.

    ``save_weights(output_dir)`` writes the config and weights (default ``model.save_pretrained``). Training passes
    its Trainer's ``save_model``, which with --push_to_hub uploads the folder: it runs last, so the upload holds
    the processor and clip specification too. vidcls pretrain saves its masked autoencoder the same way.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_processor(model, spec, output_dir)
    spec.save(output_dir)
    (save_weights or model.save_pretrained)(output_dir)
    return output_dir


def load_trained(model_dir: str | Path):
    """A model saved by ``vidcls train`` and its clip specification."""
    model_dir = Path(model_dir)
    trained_config(model_dir)  # says what is wrong with a folder that is not a model
    spec = ClipSpec.load(model_dir)
    model = AutoModelForVideoClassification.from_pretrained(model_dir)
    family_of(model.config)
    return model.eval(), spec


def input_size(model_name_or_path: str | None = None, config_name: str | None = None) -> int:
    """The input height/width of a checkpoint or config, without loading weights."""
    if config_name:
        return size_of(_load_config(config_name))
    if not model_name_or_path:
        raise ConfigError("pass --image_size, --config_name or --model_name_or_path")
    try:
        return size_of(AutoConfig.from_pretrained(model_name_or_path))
    except (OSError, ValueError) as err:
        raise ConfigError(f"--model_name_or_path {model_name_or_path}: cannot load its config ({err})") from err
