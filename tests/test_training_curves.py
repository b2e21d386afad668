"""training_curves.png: only panels and legend entries that have data, for short runs too."""

import pytest

from vidcls.engine.report import curve_panels, plot_training_curves

ONE_STEP = [{"loss": 2.1, "learning_rate": 5e-5, "step": 1, "epoch": 0.5}]
ONE_EVAL = [*ONE_STEP, {"eval_accuracy": 0.5, "eval_clip_accuracy": 0.4, "eval_loss": 1.9, "step": 2, "epoch": 1.0}]
NO_LR = [{"loss": 2.1, "step": 1, "epoch": 0.5}, {"train_runtime": 3.0, "step": 1}]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], {}),
        (ONE_STEP, {"loss": ["training loss"], "learning rate": [None]}),
        (NO_LR, {"loss": ["training loss"]}),
        (
            ONE_EVAL,
            {
                "loss": ["training loss", "validation loss"],
                "learning rate": [None],
                "validation accuracy": ["per video", "per clip"],
            },
        ),
    ],
)
def test_only_panels_and_lines_with_data(history, expected):
    panels = curve_panels(history)
    assert {title: [line[3] for line in lines] for title, _, lines in panels} == expected
    assert all(xs and len(xs) == len(ys) for _, _, lines in panels for xs, ys, *_ in lines)


@pytest.mark.parametrize("history", [[], ONE_STEP, ONE_EVAL])
def test_png_is_written_for_any_run_length(tmp_path, history):
    path = plot_training_curves(history, tmp_path / "training_curves.png")
    assert path.read_bytes().startswith(b"\x89PNG")
