import torch
from transformers import AutoModelForVideoClassification, TrainingArguments

from vidcls.config import ClipSpec
from vidcls.engine.trainer import VideoTrainer
from vidcls.models.factory import create_model


def test_best_checkpoint_is_restored_exactly(tmp_path):
    """VideoMAE saves q_bias/v_bias under legacy names that a non-strict reload skips; ours must not."""
    model = create_model(None, "tiny", {"a": 0, "b": 1})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("q_bias", "v_bias", "query.bias", "value.bias")):
                param.normal_()
    best = tmp_path / "checkpoint-1"
    model.save_pretrained(best)
    expected = AutoModelForVideoClassification.from_pretrained(best).state_dict()

    trainer = VideoTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), report_to=[]),
        clip_spec=ClipSpec(),
        input_name="pixel_values",
    )
    with torch.no_grad():  # training moves on after the best epoch
        for param in model.parameters():
            param.add_(1.0)
    trainer.state.best_model_checkpoint = str(best)
    trainer._load_best_model()

    restored = trainer.model.state_dict()
    assert restored.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(restored[name], tensor), name
    pixels = torch.randn(1, 16, 3, 32, 32)
    reloaded = AutoModelForVideoClassification.from_pretrained(best).eval()
    assert torch.allclose(trainer.model.eval()(pixel_values=pixels).logits, reloaded(pixel_values=pixels).logits)
