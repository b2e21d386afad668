"""Every supported family: built from a tiny config, trained for a step, saved, reloaded and run by vidcls."""

import torch

from vidcls.config import ClipSpec
from vidcls.engine.batching import prepare_pixels
from vidcls.engine.predict import Predictor
from vidcls.models.factory import create_model, resolve_clip_spec, save_trained
from vidcls.models.families import family_of

LABELS = {"left": 0, "right": 1, "up": 2}


def test_family_trains_saves_and_predicts(model_type, tiny_configs, tmp_path):
    config_path = tmp_path / "config.json"
    tiny_configs[model_type].to_json_file(config_path)
    model = create_model(None, str(config_path), LABELS)
    family = family_of(model.config)
    spec = resolve_clip_spec(model, sample_rate=1)
    assert (spec.num_frames, spec.image_size) == (4, 16)

    clips = torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8)  # (B, T, C, H, W)
    batch = prepare_pixels({family.input_name: clips, "labels": torch.tensor([0, 2])}, family.input_name, spec)
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)

    save_trained(model, spec, tmp_path / "out")
    predictor = Predictor.from_pretrained(tmp_path / "out")
    frames = torch.randint(0, 256, (12, 24, 32, 3), dtype=torch.uint8).numpy()
    top = predictor.predict_frames(frames, top_k=3)
    assert {p["label"] for p in top} == set(LABELS)
    assert ClipSpec.load(tmp_path / "out") == spec
