import pytest
import torch
from transformers import AutoModelForVideoClassification, AutoVideoProcessor

from vidcls.config import ClipSpec
from vidcls.errors import ConfigError
from vidcls.models.factory import create_model, load_trained, resolve_clip_spec, save_trained, tiny_videomae_config
from vidcls.models.families import family_of

LABELS = {"a": 0, "b": 1, "c": 2}


def test_tiny_preset_is_small_and_labelled():
    model = create_model(None, "tiny", LABELS)
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    logits = model(pixel_values=torch.randn(1, 16, 3, 32, 32)).logits
    assert logits.shape == (1, 3)


def test_config_file(micro_config):
    model = create_model(None, str(micro_config), LABELS)
    assert model.config.num_labels == 3 and model.config.image_size == 16


def test_pretrained_folder_gets_a_new_head(tmp_path):
    config = tiny_videomae_config()
    config.num_labels = 400  # like a Kinetics-400 checkpoint
    AutoModelForVideoClassification.from_config(config).save_pretrained(tmp_path)
    model = create_model(str(tmp_path), None, LABELS)
    assert model.classifier.out_features == 3
    assert model.config.label2id == LABELS


def test_unknown_config_name_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="--config_name"):
        create_model(None, str(tmp_path / "nope.json"), LABELS)


def test_neither_model_nor_config():
    with pytest.raises(ConfigError, match="--model_name_or_path"):
        create_model(None, None, LABELS)


def test_clip_spec_comes_from_the_model_and_flags():
    model = create_model(None, "tiny", LABELS)
    spec = resolve_clip_spec(model, sample_rate=2, num_frames=None)
    assert (spec.num_frames, spec.image_size, spec.sample_rate) == (16, 32, 2)


def test_frame_count_the_model_cannot_take_fails_before_data():
    model = create_model(None, "tiny", LABELS)
    with pytest.raises(ConfigError, match="exactly 16 frames"):
        resolve_clip_spec(model, num_frames=8)


def test_unsupported_family():
    from transformers import BertConfig

    with pytest.raises(ConfigError, match="not supported"):
        family_of(BertConfig())


def test_clip_spec_roundtrip_and_validation(tmp_path):
    spec = ClipSpec(num_frames=8, image_size=64, sample_rate=2)
    spec.save(tmp_path)
    assert ClipSpec.load(tmp_path) == spec
    with pytest.raises(ConfigError, match="--sample_rate"):
        ClipSpec(sample_rate=0)


def test_save_trained_is_what_load_trained_reads(micro_config, tmp_path):
    torch.manual_seed(0)
    model = create_model(None, str(micro_config), LABELS).eval()
    spec = resolve_clip_spec(model, sample_rate=3, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))
    pixels = torch.randn(2, 4, 3, 16, 16)  # (B, T, C, H, W)
    assert save_trained(model, spec, tmp_path / "run" / "model") == tmp_path / "run" / "model"
    loaded, loaded_spec = load_trained(tmp_path / "run" / "model")
    assert loaded_spec == spec and loaded.config.label2id == LABELS
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values=pixels).logits, model(pixel_values=pixels).logits)
    processor = AutoVideoProcessor.from_pretrained(tmp_path / "run" / "model")  # for transformers.pipeline
    assert (tuple(processor.image_mean), tuple(processor.image_std)) == (spec.mean, spec.std)
