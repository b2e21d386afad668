"""vidcls pretrain: the masked autoencoder learns, resumes after a kill, and its folder loads where users take it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForVideoClassification, VideoMAEConfig, VideoMAEForPreTraining

from vidcls.cli import main
from vidcls.data.layouts import LayoutOptions
from vidcls.data.unlabelled import UNLABELLED, pretraining_videos
from vidcls.errors import ConfigError, DatasetError
from vidcls.models.pretraining import tube_mask

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def micro_mae(micro_config, tmp_path_factory) -> Path:
    """The micro encoder of conftest with a decoder as small: pretrains in seconds."""
    config = VideoMAEConfig.from_json_file(micro_config)
    config.decoder_hidden_size, config.decoder_num_hidden_layers = 32, 1
    config.decoder_num_attention_heads, config.decoder_intermediate_size = 2, 64
    path = tmp_path_factory.mktemp("mae") / "config.json"
    config.to_json_file(path)
    return path


# Raw-pixel targets: at 16 px a patch normalised on its own (the default target) is mostly noise, so only the
# tiny 32 px model learns it, too slowly for a test; raw pixels check the same masking, loss and optimiser.
def _args(data, config, output_dir, *flags, epochs=6):
    return ["pretrain", "--data_dir", str(data), "--config_name", str(config), "--output_dir", str(output_dir),
            "--num_train_epochs", str(epochs), "--sample_rate", "2", "--learning_rate", "3e-3", "--seed", "3",
            "--mask_ratio", "0.5", "--per_device_train_batch_size", "4", "--dataloader_num_workers", "0",
            "--logging_steps", "2", "--norm_pix_loss", "false", *flags]  # fmt: skip


def _losses(output_dir: Path) -> list[float]:
    return [entry["loss"] for entry in json.loads((output_dir / "pretrain_results.json").read_text())["loss_history"]]


@pytest.fixture(scope="module")
def pretrained(motion_data, micro_mae, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("pretrained")
    assert main(_args(motion_data, micro_mae, output_dir)) == 0
    return output_dir


def test_tube_mask_hides_the_same_patches_at_every_time_step():
    config = VideoMAEConfig(image_size=32, patch_size=8, num_frames=8, tubelet_size=2)  # 4 steps x 16 patches
    mask = tube_mask(config, 3, 0.75, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (3, 4 * 16) and mask.dtype == torch.bool
    steps = mask.view(3, 4, 16)
    assert (steps == steps[:, :1]).all()  # a tube: the same positions in every tubelet
    assert (steps[:, 0].sum(dim=1) == 12).all()  # exactly 75% of the positions in every clip
    assert not torch.equal(steps[0, 0], steps[1, 0])  # each clip its own draw
    with pytest.raises(ConfigError, match="--mask_ratio"):
        tube_mask(config, 1, 0.01)


def test_loss_goes_down_and_the_folder_loads_everywhere(pretrained, motion_data, micro_mae, tmp_path):
    losses = _losses(pretrained)
    assert len(losses) >= 4
    assert sum(losses[-2:]) / 2 < 0.5 * sum(losses[:2]) / 2, losses

    # transformers loads it as what it is.
    mae = VideoMAEForPreTraining.from_pretrained(pretrained)
    assert not mae.config.norm_pix_loss  # as asked; the default is the paper's normalised pixels
    saved = load_file(pretrained / "model.safetensors")
    # vidcls train fine-tunes its encoder under a new head: the encoder's tensors are the pretrained ones.
    assert main(["train", "--data_dir", str(motion_data), "--model_name_or_path", str(pretrained), "--output_dir",
                 str(tmp_path / "tuned"), "--num_train_epochs", "1", "--learning_rate", "0", "--warmup_steps", "0",
                 "--per_device_train_batch_size", "4", "--dataloader_num_workers", "0",
                 "--sample_rate", "2"]) == 0  # fmt: skip
    tuned = load_file(tmp_path / "tuned" / "model.safetensors")
    encoder = [name for name in saved if name.startswith("videomae.")]
    assert encoder and all(torch.equal(tuned[name], saved[name]) for name in encoder)
    classifier = AutoModelForVideoClassification.from_pretrained(tmp_path / "tuned")
    assert classifier.config.num_labels == 8


def test_predicting_with_a_pretrained_encoder_says_to_fine_tune_it(pretrained):
    from vidcls.models.factory import load_trained

    with pytest.raises(ConfigError, match="vidcls train --model_name_or_path"):
        load_trained(pretrained)


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_does(pretrained, motion_data, micro_mae, tmp_path):
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "vidcls", *_args(motion_data, micro_mae, killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    state = killed / "checkpoint-8" / "trainer_state.json"  # end of epoch 2 of 6 (16 videos, batches of 4)
    deadline = time.monotonic() + 120
    while not state.exists():  # polls a condition, not a fixed delay
        assert process.poll() is None, "pretraining ended before the checkpoint appeared"
        assert time.monotonic() < deadline, f"{state} did not appear"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "pretrain_results.json").exists()

    assert main(_args(motion_data, micro_mae, killed)) == 0  # the same command resumes
    final = load_file(killed / "model.safetensors")
    reference = load_file(pretrained / "model.safetensors")
    for name, tensor in reference.items():
        assert torch.allclose(final[name], tensor, atol=1e-6), name


def test_a_finished_run_is_not_redone(pretrained, motion_data, micro_mae):
    assert main(_args(motion_data, micro_mae, pretrained)) == 2  # says so, and how to start afresh


def test_only_the_training_split_of_a_labelled_dataset_is_used(motion_data, tmp_path):
    found = pretraining_videos(motion_data, LayoutOptions())
    assert {r.path.parent.parent.name for r in found.records} == {"train"}
    assert sorted(found.left_out) == ["test (16 videos)", "val (16 videos)"]
    with_val = pretraining_videos(motion_data, LayoutOptions(), extra_dirs=[str(motion_data / "val")])
    assert len(with_val.records) == 32 and all(r.label == UNLABELLED for r in with_val.records[16:])


def test_a_plain_tree_of_videos_works(motion_data, tmp_path):
    tree = tmp_path / "tree"
    (tree / "2024" / "june").mkdir(parents=True)
    shutil.copy(next((motion_data / "train").rglob("*.avi")), tree / "top.avi")
    shutil.copy(next((motion_data / "val").rglob("*.avi")), tree / "2024" / "june" / "deep.avi")
    (tree / "notes.txt").write_text("not a video")
    found = pretraining_videos(tree, LayoutOptions())
    assert sorted(r.path.name for r in found.records) == ["deep.avi", "top.avi"]
    with pytest.raises(DatasetError, match="--extra_unlabelled_dir"):
        pretraining_videos(tree, LayoutOptions(), extra_dirs=[str(tmp_path / "missing")])


def test_the_papers_recipe_is_the_default(tmp_path):
    from vidcls.cli.pretrain import build_parser, split_arguments

    data_args, model_args, _, training_args = split_arguments(
        build_parser().parse_args(["--data_dir", "d", "--output_dir", str(tmp_path), "--config_name", "tiny"])
    )
    assert (model_args.mask_ratio, model_args.norm_pix_loss, data_args.hflip) == (0.9, True, True)
    assert (training_args.adam_beta1, training_args.adam_beta2, training_args.weight_decay) == (0.9, 0.95, 0.05)
    assert training_args.lr_scheduler_type.value == "cosine" and 0 < training_args.warmup_steps < 1
    assert training_args.learning_rate == pytest.approx(1.5e-4 * 8 / 256)  # base x batch / 256


def test_not_a_videomae_is_a_one_line_error(motion_data, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "timesformer"}))
    assert main(["pretrain", "--data_dir", str(motion_data), "--config_name", str(config),
                 "--output_dir", str(tmp_path / "out")]) == 2  # fmt: skip
    assert "needs a VideoMAE" in capsys.readouterr().err
