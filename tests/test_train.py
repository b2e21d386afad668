import pytest
import torch
from transformers import AutoModelForVideoClassification, TrainingArguments

from vidcls.cli.train import build_parser, split_arguments
from vidcls.config import ClipSpec
from vidcls.engine.trainer import VideoTrainer
from vidcls.errors import ConfigError
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


def training_arguments(*flags: str) -> TrainingArguments:
    args = build_parser().parse_args(["--data_dir", "data", "--output_dir", "out", *flags])
    return split_arguments(args)[-1]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], ("epoch", "epoch", True)),  # the guide's
        (["--eval_strategy", "steps", "--eval_steps", "50"], ("steps", "steps", True)),  # checkpoints follow
        (["--eval_strategy", "no"], ("no", "epoch", False)),  # no evaluation: no best model to keep
        (["--save_strategy", "no"], ("epoch", "no", False)),
        (["--eval_strategy", "steps", "--save_strategy", "epoch"], ("steps", "epoch", False)),  # flags win
    ],
)
def test_saving_and_the_best_model_follow_the_flags_given(flags, expected):
    args = training_arguments(*flags)
    assert (args.eval_strategy.value, args.save_strategy.value, args.load_best_model_at_end) == expected
    if args.save_strategy.value == "steps":
        assert args.save_steps == args.eval_steps == 50


def test_a_best_model_that_cannot_be_kept_is_a_one_line_error():
    with pytest.raises(ConfigError, match="load_best_model_at_end"):
        training_arguments("--eval_strategy", "steps", "--save_strategy", "epoch", "--load_best_model_at_end", "true")


def test_no_workers_means_no_persistent_workers(tmp_path):
    model = create_model(None, "tiny", {"a": 0, "b": 1})
    args = TrainingArguments(output_dir=str(tmp_path), dataloader_num_workers=0, dataloader_persistent_workers=True)
    VideoTrainer(model=model, args=args, clip_spec=ClipSpec(), input_name="pixel_values")
    assert not args.dataloader_persistent_workers  # torch's DataLoader refuses persistent workers without workers
