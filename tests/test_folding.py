"""Folding the pixel normalisation into the patch embedding: same logits from uint8 clips, saved folders untouched."""

import copy
import logging

import pytest
import torch

from vidcls.cli import main
from vidcls.engine.batching import prepare_pixels
from vidcls.engine.predict import Predictor
from vidcls.models.factory import create_model, load_trained, resolve_clip_spec
from vidcls.models.families import class_logits, family_of
from vidcls.models.folding import fold_normalization, patch_embedding, refusal, takes_uint8

LABELS = {"left": 0, "right": 1, "up": 2}
# Unlike ImageNet's, far from each other per channel, so a channel folded with another's values shows.
MEAN, STD = (0.3, 0.5, 0.7), (0.15, 0.25, 0.35)


def build(model_type, tiny_configs, tmp_path):
    """A random tiny model of the family and its clip spec (4 frames, 16 px, the mean and std above)."""
    tiny_configs[model_type].to_json_file(tmp_path / "config.json")
    torch.manual_seed(0)
    model = create_model(None, str(tmp_path / "config.json"), LABELS)
    return model, resolve_clip_spec(model, sample_rate=1, mean=MEAN, std=STD)


def channels_last_clips(count: int = 3) -> torch.Tensor:
    """Random uint8 (N, T, C, H, W) clips in the decoder's (T, H, W, C) memory layout, as batches arrive."""
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (count, 4, 16, 16, 3), dtype=torch.uint8, generator=generator).movedim(-1, -3)


def test_a_folded_model_takes_uint8_and_gives_the_unfolded_logits_within_1e4(model_type, tiny_configs, tmp_path):
    model, spec = build(model_type, tiny_configs, tmp_path)
    clips = channels_last_clips()
    expected = Predictor(model, spec, device="cpu").logits(clips)  # built by hand, not folded: clips normalised

    folded = copy.deepcopy(model)
    assert fold_normalization(folded, spec.mean, spec.std) and takes_uint8(folded) and not takes_uint8(model)
    assert not torch.equal(patch_embedding(folded).weight, patch_embedding(model).weight)
    with torch.inference_mode():  # uint8 straight into the model, as the Predictor now feeds it
        logits = class_logits(folded(**{family_of(folded.config).input_name: clips}).logits)
    assert (logits - expected).abs().max() <= 1e-4
    assert (Predictor(folded, spec, device="cpu").logits(clips) - expected).abs().max() <= 1e-4
    # Folding twice would scale the pixels twice: a folded model is left as it is.
    weight = patch_embedding(folded).weight.clone()
    assert fold_normalization(folded, spec.mean, spec.std) and torch.equal(patch_embedding(folded).weight, weight)


def test_predict_folds_at_load_and_leaves_the_saved_folder_standard(save_micro_model, real_videos, tmp_path):
    model_dir = save_micro_model(tmp_path / "model")
    saved = {path.name: path.read_bytes() for path in model_dir.iterdir()}
    video = real_videos[0]
    args = ["predict", str(video), "--model_dir", str(model_dir), "--num_workers", "0", "--no-progress"]
    assert main([*args, "--output", str(tmp_path / "p.jsonl")]) == 0
    assert {path.name: path.read_bytes() for path in model_dir.iterdir()} == saved

    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    model, spec = load_trained(model_dir)  # what the folder holds: weights that expect normalised pixels
    assert takes_uint8(predictor.model) and not takes_uint8(model)
    clips = predictor.clips_from_file(video)
    assert (predictor.logits(clips) - Predictor(model, spec, device="cpu").logits(clips)).abs().max() <= 1e-4


def test_a_first_layer_that_pads_is_not_folded_and_its_clips_stay_normalised(tiny_configs, tmp_path, caplog):
    model, spec = build("videomae", tiny_configs, tmp_path)
    patch_embedding(model).padding = (0, 1, 1)  # 16 px still gives 2 x 2 patches: the model runs as before
    weights = copy.deepcopy(model.state_dict())
    with caplog.at_level(logging.WARNING, logger="vidcls.models.folding"):
        assert not fold_normalization(model, spec.mean, spec.std)
    assert "videomae: pixels are normalised before the model, whose patch embedding pads its input" in caplog.text
    assert not takes_uint8(model) and all(torch.equal(weights[k], v) for k, v in model.state_dict().items())

    clips = channels_last_clips()
    name = family_of(model.config).input_name
    with torch.inference_mode():
        expected = class_logits(model(**prepare_pixels({name: clips}, name, spec)).logits)
    assert torch.allclose(Predictor(model, spec, device="cpu").logits(clips), expected)


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (torch.nn.Conv3d(3, 8, (2, 8, 8), stride=(2, 8, 8)), ""),
        (torch.nn.Conv2d(3, 8, 8, stride=8), ""),
        (torch.nn.Conv3d(3, 8, (2, 8, 8), stride=(2, 8, 8), padding=(0, 1, 1)), "pads its input"),
        (torch.nn.Conv2d(3, 8, 3, padding="same"), "pads its input"),
        (torch.nn.Conv2d(3, 8, 8, stride=4), "has a stride (4, 4) other than its kernel (8, 8)"),
        (torch.nn.Conv2d(4, 8, 8, stride=8), "takes 4 channels in 1 groups, not the 3"),
        (torch.nn.Conv2d(3, 9, 8, stride=8, groups=3), "takes 3 channels in 3 groups"),
        (torch.nn.Linear(3, 8), "is a Linear, not a Conv2d or Conv3d"),
    ],
)
def test_the_fold_is_refused_where_it_would_not_be_exact(layer, reason):
    found = refusal(layer, channels=3)
    assert (reason in found and found) if reason else found == ""
