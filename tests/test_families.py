"""Every supported family: built from a tiny config, trained for a step, saved, reloaded and run by vidcls."""

import pytest
import torch
from transformers import TimesformerConfig, VideoMAEConfig, VideoPrismVisionConfig, VivitConfig, VJEPA2Config

from vidcls.config import ClipSpec
from vidcls.engine.batching import prepare_pixels
from vidcls.engine.predict import Predictor
from vidcls.models.factory import create_model, resolve_clip_spec, save_processor
from vidcls.models.families import family_of

SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
TINY_CONFIGS = {
    "videomae": VideoMAEConfig(
        image_size=16, patch_size=8, num_frames=4, tubelet_size=2, intermediate_size=64, **SMALL
    ),
    "timesformer": TimesformerConfig(image_size=16, patch_size=8, num_frames=4, intermediate_size=64, **SMALL),
    "vivit": VivitConfig(image_size=16, num_frames=4, tubelet_size=[2, 8, 8], intermediate_size=64, **SMALL),
    "vjepa2": VJEPA2Config(
        crop_size=16, frames_per_clip=4, patch_size=8, tubelet_size=2, mlp_ratio=2.0, num_pooler_layers=1,
        pred_hidden_size=32, pred_num_hidden_layers=1, pred_num_attention_heads=2, **SMALL,
    ),
    "videoprism": VideoPrismVisionConfig(
        image_size=16, num_frames=4, tubelet_size=[1, 8, 8], num_spatial_layers=1, num_temporal_layers=1,
        num_auxiliary_layers=1, intermediate_size=64, hidden_size=32, num_attention_heads=2,
    ),
}  # fmt: skip
LABELS = {"left": 0, "right": 1, "up": 2}


@pytest.mark.parametrize("model_type", sorted(TINY_CONFIGS))
def test_family_trains_saves_and_predicts(model_type, tmp_path):
    config_path = tmp_path / "config.json"
    TINY_CONFIGS[model_type].to_json_file(config_path)
    model = create_model(None, str(config_path), LABELS)
    family = family_of(model.config)
    spec = resolve_clip_spec(model, sample_rate=1)
    assert (spec.num_frames, spec.image_size) == (4, 16)

    clips = torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8)  # (B, T, C, H, W)
    batch = prepare_pixels({family.input_name: clips, "labels": torch.tensor([0, 2])}, family.input_name, spec)
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)

    model.save_pretrained(tmp_path / "out")
    save_processor(model, spec, tmp_path / "out")
    spec.save(tmp_path / "out")
    predictor = Predictor.from_pretrained(tmp_path / "out")
    frames = torch.randint(0, 256, (12, 24, 32, 3), dtype=torch.uint8).numpy()
    top = predictor.predict_frames(frames, top_k=3)
    assert {p["label"] for p in top} == set(LABELS)
    assert ClipSpec.load(tmp_path / "out") == spec
