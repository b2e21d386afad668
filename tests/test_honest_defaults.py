"""Honest defaults: evaluation splits as training did and never scores training videos; a rerun continues only
the same run, and never quietly skips (or redoes) training."""

import json

import pytest

from vidcls.cli import main


def _train(data, config, output_dir, *flags):
    return main(
        ["train", "--data_dir", str(data), "--config_name", str(config), "--output_dir", str(output_dir),
         "--sample_rate", "2", "--max_steps", "2", "--per_device_train_batch_size", "4",
         "--dataloader_num_workers", "0", *flags]
    )  # fmt: skip


@pytest.fixture(scope="module")
def flat_data(motion_data, tmp_path_factory):
    """The motion data merged into one folder of class folders (no split folders): 8 classes x 3 groups x 2."""
    flat = tmp_path_factory.mktemp("flat") / "data"
    for video in motion_data.glob("*/*/*.avi"):
        (flat / video.parent.name).mkdir(parents=True, exist_ok=True)
        (flat / video.parent.name / video.name).symlink_to(video)
    return flat


@pytest.fixture(scope="module")
def split_model(flat_data, micro_config, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("split") / "model"
    assert _train(flat_data, micro_config, output_dir, "--split_ratios", "0.5,0.25,0.25", "--split_seed", "3") == 0
    return output_dir


def test_the_split_is_saved_and_evaluate_uses_it(split_model, flat_data, tmp_path):
    saved = json.loads((split_model / "split.json").read_text())
    assert saved["layout"]["split_ratios"] == [0.5, 0.25, 0.25] and saved["layout"]["seed"] == 3
    files = saved["files"]
    assert set(files) == {"train", "val", "test"} and not set(files["train"]) & set(files["test"])
    report = tmp_path / "eval.json"
    # No layout flags: the model's own split, so its test split holds none of the training videos.
    assert main(["evaluate", "--model_dir", str(split_model), "--data_dir", str(flat_data), "--num_workers", "0",
                 "--output", str(report)]) == 0  # fmt: skip
    predictions = json.loads(report.read_text())["predictions_csv"]
    with open(predictions) as file:
        scored = {line.split(",")[0] for line in file.read().splitlines()[1:]}
    assert len(scored) == len(files["test"]) and not scored & set(files["train"])


@pytest.mark.parametrize("flags", [["--split_ratios", "0.7,0.15,0.15"], ["--eval_split", "train"]])
def test_evaluating_training_videos_is_refused_unless_asked(split_model, flat_data, tmp_path, flags, capsys):
    args = ["evaluate", "--model_dir", str(split_model), "--data_dir", str(flat_data), "--num_workers", "0",
            "--output", str(tmp_path / "eval.json"), *flags]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "were used to train this model" in err and "--allow_train_overlap" in err and len(err.splitlines()) == 1
    assert main([*args, "--allow_train_overlap"]) == 0


def test_a_rerun_resumes_only_the_same_run(motion_data, micro_config, tmp_path, capsys):
    output_dir = tmp_path / "out"
    assert _train(motion_data, micro_config, output_dir) == 0
    capsys.readouterr()
    # The same command again: the run is finished, and saying so beats training nothing in silence.
    assert _train(motion_data, micro_config, output_dir) == 2
    err = capsys.readouterr().err
    assert "holds a finished run" in err and "--overwrite_output_dir" in err
    # Other settings: named, with the way out.
    assert _train(motion_data, micro_config, output_dir, "--learning_rate", "1e-3") == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "trainer.learning_rate" in err and len(err.strip().splitlines()) == 1
    # Training longer continues the same run.
    assert _train(motion_data, micro_config, output_dir, "--max_steps", "4") == 0
    assert json.loads((output_dir / "train_results.json").read_text())["epoch"] > 0
    state = json.loads(sorted(output_dir.glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    assert state["global_step"] == 4


def test_other_data_in_the_same_folder_is_refused_then_overwritten(motion_data, flat_data, micro_config, tmp_path,
                                                                    capsys):  # fmt: skip
    output_dir = tmp_path / "out"
    assert _train(motion_data, micro_config, output_dir, "--max_steps", "4", "--save_steps", "2",
                  "--eval_strategy", "steps", "--eval_steps", "2") == 0  # fmt: skip
    (output_dir / "checkpoint-4").rename(output_dir / "checkpoint-4-gone")  # as if killed after step 2
    other = ["--split_ratios", "0.5,0.25,0.25", "--max_steps", "4", "--save_steps", "2", "--eval_strategy", "steps",
             "--eval_steps", "2"]  # fmt: skip
    capsys.readouterr()
    assert _train(flat_data, micro_config, output_dir, *other) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "data.train" in err
    assert _train(flat_data, micro_config, output_dir, *other, "--overwrite_output_dir") == 0
    assert json.loads((output_dir / "split.json").read_text())["data_dir"] == str(flat_data)


def test_output_dir_is_required(motion_data, micro_config, capsys):
    assert main(["train", "--data_dir", str(motion_data), "--config_name", str(micro_config)]) == 2
    assert "--output_dir is required" in capsys.readouterr().err
