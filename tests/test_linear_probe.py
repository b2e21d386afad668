"""--freeze_backbone (the linear probe) and --head_lr: which tensors training may change."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForVideoClassification, VideoMAEConfig

from vidcls.cli import main
from vidcls.cli.train import build_parser, split_arguments
from vidcls.engine.train import train
from vidcls.errors import ConfigError
from vidcls.models.factory import head_parameter_names


def _backbone_folder(micro_config, folder):
    config = VideoMAEConfig.from_json_file(micro_config)
    config.num_labels = 5  # another dataset's head: vidcls train replaces it
    torch.manual_seed(0)
    AutoModelForVideoClassification.from_config(config).save_pretrained(folder)
    return load_file(folder / "model.safetensors")


def _train(data, backbone, output_dir, *flags):
    return main(["train", "--data_dir", str(data), "--model_name_or_path", str(backbone), "--output_dir",
                 str(output_dir), "--num_train_epochs", "2", "--sample_rate", "2", "--learning_rate", "1e-2",
                 "--per_device_train_batch_size", "4", "--dataloader_num_workers", "0", *flags])  # fmt: skip


def test_freeze_backbone_trains_the_head_only(motion_data, micro_config, tmp_path):
    before = _backbone_folder(micro_config, tmp_path / "backbone")
    assert _train(motion_data, tmp_path / "backbone", tmp_path / "probe", "--freeze_backbone") == 0
    after = load_file(tmp_path / "probe" / "model.safetensors")
    head = {name for name in after if not name.startswith("videomae.")}
    assert head == {"fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"}
    for name in after.keys() - head:
        assert torch.equal(after[name], before[name]), f"{name} changed although the backbone is frozen"
    assert not torch.equal(after["classifier.bias"], torch.zeros_like(after["classifier.bias"]))  # it trained


def test_without_freezing_the_backbone_changes_too(motion_data, micro_config, tmp_path):
    before = _backbone_folder(micro_config, tmp_path / "backbone")
    assert _train(motion_data, tmp_path / "backbone", tmp_path / "full", "--head_lr", "1e-1") == 0
    after = load_file(tmp_path / "full" / "model.safetensors")
    name = "videomae.embeddings.patch_embeddings.projection.weight"
    assert not torch.equal(after[name], before[name])


def test_head_is_what_the_backbone_lacks(micro_config):
    model = AutoModelForVideoClassification.from_config(VideoMAEConfig.from_json_file(micro_config))
    assert head_parameter_names(model) == {"fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"}


def test_head_lr_with_layer_decay_is_a_one_line_error(motion_data, micro_config, tmp_path):
    args = build_parser().parse_args(["--data_dir", str(motion_data), "--config_name", str(micro_config),
                                      "--output_dir", str(tmp_path / "x"), "--head_lr", "1e-2",
                                      "--layer_decay", "0.75"])  # fmt: skip
    data_args, model_args, recipe_args, output_args, training_args = split_arguments(args)
    with pytest.raises(ConfigError, match="--head_lr"):
        train(data_args, model_args, training_args, recipe_args, output_args)
