"""Training recipes: flag > preset > off, and each piece of the VideoMAE recipe has its effect."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from transformers import TrainingArguments

from vidcls.cli import main
from vidcls.config import IMAGENET_MEAN, Augmentation, ClipSpec
from vidcls.data.transforms import build_clip_augment, normalize, to_video_tensor
from vidcls.engine.batching import BatchMixer, augment_clips
from vidcls.engine.recipes import (
    DropPath,
    Recipe,
    RecipeArguments,
    RepeatedSampler,
    apply_drop_path,
    layer_depths,
    resolve,
    soft_target_cross_entropy,
)
from vidcls.engine.trainer import VideoTrainer
from vidcls.errors import ConfigError
from vidcls.models import families
from vidcls.models.factory import create_model

LABELS = {"a": 0, "b": 1, "c": 2}


@pytest.fixture
def tiny_model(tiny_configs, tmp_path):
    """``tiny_model(model_type)``: a new classifier of that family (conftest's tiny config) for LABELS."""

    def build(model_type: str):
        path = tmp_path / f"{model_type}.json"
        tiny_configs[model_type].to_json_file(path)
        return create_model(None, str(path), LABELS)

    return build


def test_flag_beats_preset_beats_off():
    assert resolve(RecipeArguments()) == Recipe()  # the guide: every piece off
    videomae = resolve(RecipeArguments(recipe="videomae"))
    assert (videomae.layer_decay, videomae.drop_path, videomae.mixup_alpha, videomae.cutmix_alpha) == (
        0.75,
        0.1,
        0.8,
        1.0,
    )
    assert (videomae.label_smoothing, videomae.rand_augment, videomae.random_erasing) == (0.1, (4, 7), 0.25)
    assert videomae.repeated_augmentation == 2
    overridden = resolve(RecipeArguments(recipe="videomae", mixup_alpha=0.0, rand_augment="off", layer_decay=0.9))
    assert (overridden.mixup_alpha, overridden.rand_augment, overridden.layer_decay) == (0.0, None, 0.9)
    assert overridden.cutmix_alpha == 1.0  # the rest stays the preset's
    one_piece = resolve(RecipeArguments(), label_smoothing=0.2)  # the Trainer's --label_smoothing_factor
    assert one_piece == Recipe(label_smoothing=0.2) and one_piece.soft_targets
    assert resolve(RecipeArguments(recipe="videomae")).card_settings()["recipe"] == "videomae"
    assert Recipe().card_settings() == {"recipe": "guide"}


def test_bad_recipe_settings_name_the_flag():
    with pytest.raises(ConfigError, match="--recipe 'deit'.*guide, videomae"):
        RecipeArguments(recipe="deit")
    with pytest.raises(ConfigError, match="--rand_augment"):
        RecipeArguments(rand_augment="strong")
    with pytest.raises(ConfigError, match="--layer_decay"):
        resolve(RecipeArguments(layer_decay=1.5))
    with pytest.raises(ConfigError, match="--repeated_augmentation"):
        resolve(RecipeArguments(repeated_augmentation=0))


# The families whose blocks take drop path and layer decay: all but VideoPrism, which has two block stacks
# (spatial, temporal) and no support yet.
WITH_DROP_PATH = sorted(name for name, family in families.FAMILIES.items() if family.residual_branches)


@pytest.mark.parametrize("model_type", WITH_DROP_PATH)
def test_layer_depths_rank_embeddings_blocks_head(tiny_model, model_type):
    model = tiny_model(model_type)
    depths, num_blocks = layer_depths(model)
    assert num_blocks == 2
    assert any(d == 0 for name, d in depths.items() if "embeddings" in name)
    assert {d for name, d in depths.items() if ".1." in name and "embeddings" not in name} >= {2}
    assert depths["classifier.weight"] == num_blocks + 1


def test_layer_decay_param_groups(tiny_model, tmp_path):
    model = tiny_model("videomae")
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], learning_rate=1e-3, weight_decay=0.05)
    recipe = Recipe(layer_decay=0.5)
    trainer = VideoTrainer(model=model, args=args, clip_spec=ClipSpec(), input_name="pixel_values", recipe=recipe)
    optimizer = trainer.create_optimizer()
    lr_of = {id(p): (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}
    params = dict(model.named_parameters())
    # L = 2 blocks: embeddings 0.5^3, block 0 0.5^2, block 1 0.5^1, head 1.
    assert lr_of[id(params["videomae.embeddings.patch_embeddings.projection.weight"])] == (1e-3 * 0.125, 0.05)
    assert lr_of[id(params["videomae.encoder.layer.0.attention.attention.query.weight"])] == (1e-3 * 0.25, 0.05)
    assert lr_of[id(params["videomae.encoder.layer.1.intermediate.dense.weight"])] == (1e-3 * 0.5, 0.05)
    assert lr_of[id(params["videomae.encoder.layer.1.intermediate.dense.bias"])] == (1e-3 * 0.5, 0.0)
    assert lr_of[id(params["videomae.encoder.layer.1.layernorm_before.weight"])] == (1e-3 * 0.5, 0.0)
    assert lr_of[id(params["classifier.weight"])] == (1e-3, 0.05)
    assert optimizer.param_groups[0]["lr"] == 1e-3  # the Trainer logs group 0's rate
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(params)


@pytest.mark.parametrize("model_type", WITH_DROP_PATH)
def test_drop_path_on_every_block(tiny_model, model_type):
    model = tiny_model(model_type).eval()
    family = families.family_of(model.config)
    pixels = torch.randn(2, 4, 3, 16, 16)
    before = model(**{family.input_name: pixels}).logits
    apply_drop_path(model, 0.5)
    rates = sorted({round(m.rate, 4) for m in model.modules() if isinstance(m, DropPath)})
    assert rates == [0.0, 0.5]  # linear from the first block to the last
    assert torch.allclose(model(**{family.input_name: pixels}).logits, before)  # evaluation: unchanged
    model.train()
    torch.manual_seed(0)
    outputs = [model(**{family.input_name: pixels.repeat(8, 1, 1, 1, 1)}).logits for _ in range(2)]
    assert not torch.allclose(outputs[0], outputs[1])


def test_drop_path_unsupported_family_names_the_flag(tiny_model, monkeypatch):
    model = tiny_model("vivit")
    monkeypatch.setitem(
        families.FAMILIES, "vivit", dataclasses.replace(families.FAMILIES["vivit"], residual_branches=())
    )
    with pytest.raises(ConfigError, match="--drop_path is not supported for vivit"):
        apply_drop_path(model, 0.1)


def test_rand_augment_and_erasing_keep_uint8_and_shape():
    assert build_clip_augment(Augmentation(), IMAGENET_MEAN) is None  # the guide's training adds nothing
    frame = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    clip = to_video_tensor(np.repeat(frame, 4, axis=0))  # 4 identical frames
    augment = build_clip_augment(Augmentation(rand_augment=(3, 9), random_erasing=1.0), IMAGENET_MEAN)
    torch.manual_seed(0)
    out = augment(clip)
    assert out.dtype == torch.uint8 and out.shape == (4, 3, 32, 32)
    assert not torch.equal(out, clip)
    assert all(torch.equal(out[0], out[t]) for t in range(4))  # one draw of ops and one rectangle for every frame


def test_random_erasing_fills_the_mean_colour():
    clip = to_video_tensor(np.zeros((2, 32, 32, 3), dtype=np.uint8))
    out = build_clip_augment(Augmentation(random_erasing=1.0), IMAGENET_MEAN)(clip)
    erased = (out != 0).flatten(2).any(dim=1)  # (T, C, H*W) -> (T, H*W): pixels not black any more
    assert erased.any() and torch.equal(erased[0], erased[1])
    assert out[0].flatten(1)[:, erased[0]].unique(dim=1).T.tolist() == [[124, 116, 104]]
    batch = {"pixel_values": torch.zeros(4, 2, 3, 32, 32, dtype=torch.uint8)}
    clips = augment_clips(batch, "pixel_values", build_clip_augment(Augmentation(random_erasing=1.0), IMAGENET_MEAN))[
        "pixel_values"
    ]
    assert clips.dtype == torch.uint8 and len({tuple((clip != 0).flatten().tolist()) for clip in clips}) > 1


@pytest.mark.parametrize("alphas", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixup_cutmix_give_soft_targets_the_loss_takes(alphas):
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 0])  # repeated augmentation: two views of each video side by side
    pixels = torch.randn(8, 2, 3, 16, 16)
    mixer = BatchMixer(3, mixup_alpha=alphas[0], cutmix_alpha=alphas[1], label_smoothing=0.1, partner_shift=2)
    batch = mixer({"pixel_values": pixels, "labels": labels, "video_index": torch.arange(8)}, "pixel_values")
    targets = batch["labels"]
    assert targets.shape == (8, 3) and torch.allclose(targets.sum(dim=1), torch.ones(8))
    assert targets.min() >= 0.1 / 3 - 1e-6 and batch["pixel_values"].shape == pixels.shape
    assert torch.equal(batch["video_index"], torch.arange(8))
    partners = labels.roll(2)  # clip i is mixed with clip i - 2: another video
    lam = targets[torch.arange(8), labels] - 0.1 / 3
    assert (lam < 0.9).any() or alphas == (0.0, 1.0)  # mixed (CutMix may keep almost all)
    assert torch.all(targets[torch.arange(8), partners] >= 0.1 / 3)
    logits = torch.randn(8, 3, requires_grad=True)
    loss = soft_target_cross_entropy({"logits": logits}, targets)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None
    hard = soft_target_cross_entropy({"logits": logits}, labels)  # evaluation: the usual cross-entropy
    assert torch.allclose(hard, torch.nn.functional.cross_entropy(logits, labels))
    assert torch.allclose(soft_target_cross_entropy({"logits": logits}, labels, 16), hard / 2)


def test_trainer_mixes_training_batches_only(tiny_model, tmp_path):
    model = tiny_model("videomae")
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    recipe = Recipe(mixup_alpha=0.8, label_smoothing=0.1, rand_augment=(2, 9), random_erasing=0.5)
    spec = ClipSpec(num_frames=4, image_size=16)
    trainer = VideoTrainer(model=model, args=args, clip_spec=spec, input_name="pixel_values", recipe=recipe)
    batch = {
        "pixel_values": torch.randint(0, 256, (4, 4, 3, 16, 16), dtype=torch.uint8),
        "labels": torch.tensor([0, 1, 2, 0]),
        "video_index": torch.arange(4),
    }
    model.train()
    inputs = trainer._prepare_inputs(dict(batch))
    assert inputs["labels"].shape == (4, 3) and inputs["pixel_values"].dtype == torch.float32
    loss = trainer.compute_loss(model, inputs)
    assert torch.isfinite(loss)
    model.eval()
    evaluated = trainer._prepare_inputs(dict(batch))
    assert evaluated["labels"].tolist() == [0, 1, 2, 0]
    assert torch.equal(evaluated["pixel_values"], normalize(batch["pixel_values"], spec.mean, spec.std))


def test_repeated_sampler_repeats_and_shards():
    from accelerate.data_loader import BatchSamplerShard

    sampler = RepeatedSampler(8, 2, seed=3)
    order = list(sampler)
    assert len(order) == len(sampler) == 16 and sorted(order) == sorted(list(range(8)) * 2)
    assert order[0::2] == order[1::2]  # a video's copies side by side
    assert list(RepeatedSampler(8, 2, seed=3)) == order  # every process draws the same order
    sampler.set_epoch(1)
    assert list(sampler) != order
    batches = torch.utils.data.BatchSampler(sampler, batch_size=4, drop_last=False)
    shards = [list(BatchSamplerShard(batches, num_processes=2, process_index=rank)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 2
    seen = [i for shard in shards for batch in shard for i in batch]
    assert sorted(seen) == sorted(list(range(8)) * 2)  # each video twice in all, no batch on both processes


def test_videomae_recipe_end_to_end(tmp_path, motion_data, micro_config):
    output_dir = tmp_path / "model"
    code = main(
        [
            "train",
            "--data_dir", str(motion_data),
            "--config_name", str(micro_config),
            "--output_dir", str(output_dir),
            "--recipe", "videomae",
            "--sample_rate", "2",
            "--clips", "1",
            "--num_train_epochs", "1",
            "--per_device_train_batch_size", "8",
            "--dataloader_num_workers", "0",
            "--dataloader_persistent_workers", "false",
        ]
    )  # fmt: skip
    assert code == 0
    state = json.loads((output_dir / "train_results.json").read_text())
    assert state["eval_accuracy"] >= 0.0
    card = (output_dir / "README.md").read_text()
    assert "| `recipe` | `videomae` |" in card and "| `layer_decay` | `0.75` |" in card
    assert "| `weight_decay` | `0.05` |" in card
    assert json.loads((output_dir / "run.json").read_text())["recipe.rand_augment"] == [4, 7]  # what trained it
    assert "rand_augment" not in json.loads((output_dir / "vidcls.json").read_text())  # not the model's contract


def test_label_smoothing_is_the_trainers_flag(capsys):
    from vidcls.cli import main
    from vidcls.cli.train import build_parser, split_arguments

    def smoothing(*flags):
        args = build_parser().parse_args(["--data_dir", "d", "--output_dir", "o", *flags])
        return split_arguments(args)[-1].label_smoothing_factor

    assert smoothing() == 0.0 and smoothing("--recipe", "videomae") == 0.1
    assert smoothing("--recipe", "videomae", "--label_smoothing_factor", "0") == 0.0  # a flag beats the recipe
    # The old name still works and names the new one (the run then stops at the missing data folder).
    assert main(["train", "--data_dir", "nowhere", "--output_dir", "o", "--label_smoothing", "0.2"]) == 2
    assert "--label_smoothing is deprecated; use --label_smoothing_factor" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--label_smoothing_factor"):
        resolve(RecipeArguments(), label_smoothing=1.5)
