"""Data-loading workers and model threads of vidcls train and pretrain: chosen from measured costs when unset."""

import json
import logging

import pytest
import torch
from transformers import Trainer, TrainingArguments

from vidcls.cli import main
from vidcls.engine.workers import (
    AUTO,
    choose_training_workers,
    choose_workers,
    choose_workers_and_threads,
    gpu_workers,
)


@pytest.mark.parametrize(
    ("decode_ms", "step_ms", "cores", "workers"),
    [
        (12, 95, 2, 0),  # 224 px tiny VideoMAE, forward and backward: model-bound, a worker takes half its cores
        (12, 14, 2, 0),  # even: not worth a process
        (30, 3, 2, 2),  # 32 px model: decode-bound, decode beside the model
        (30, 3, 16, 6),  # cores to spare: enough workers to feed the model (6 feed 200 clips/s, the model 208)
        (40, 2_000, 16, 0),  # VideoMAE-base training on a CPU: the model is everything
    ],
)
def test_training_workers_follow_the_measured_costs(decode_ms, step_ms, cores, workers):
    assert choose_workers(decode_ms / 1000, step_ms / 1000, cores) == workers


@pytest.mark.parametrize(
    ("decode_ms", "step_ms", "one_thread_ms", "chosen"),
    [
        (30, 600, 1200, (0, 2)),  # a quiet machine: the model scales with its threads, keeps both cores
        (30, 600, 400, (1, 1)),  # other jobs on the cores: one thread is faster, a worker takes the other core
        (30, 600, None, (0, 2)),  # one thread not timed: assumed proportional
        (80, 10, 20, (2, 1)),  # decode-bound
    ],
)
def test_model_threads_follow_the_step_timed_on_one_thread(decode_ms, step_ms, one_thread_ms, chosen):
    one_thread = None if one_thread_ms is None else one_thread_ms / 1000
    assert choose_workers_and_threads(decode_ms / 1000, step_ms / 1000, 2, one_thread) == chosen


def test_a_gpu_gets_workers_for_every_core_but_one():
    assert [gpu_workers(cores) for cores in (1, 2, 4, 16)] == [2, 2, 3, 8]


def test_an_explicit_number_of_workers_is_kept_untimed(tmp_path):
    trainer = Trainer(model=torch.nn.Linear(2, 2), args=TrainingArguments(str(tmp_path), dataloader_num_workers=1))
    workers, threads = choose_training_workers(trainer, dataset=None)  # nothing decoded: there is no dataset to time
    assert workers == 1 and threads >= 1
    assert trainer.args.dataloader_num_workers == 1


def _train(data, config, output_dir, *flags):
    return main(["train", "--data_dir", str(data), "--config_name", str(config), "--output_dir", str(output_dir),
                 "--sample_rate", "2", "--max_steps", "2", "--per_device_train_batch_size", "4", "--seed", "3",
                 "--eval_strategy", "no", "--report_to", "none", *flags])  # fmt: skip


def test_train_chooses_its_workers_and_trains_as_if_never_timed(motion_data, micro_config, tmp_path, caplog):
    threads = torch.get_num_threads()
    with caplog.at_level(logging.INFO, logger="vidcls.engine.workers"):
        assert _train(motion_data, micro_config, tmp_path / "default") == 0
    [line] = [r.getMessage() for r in caplog.records if "data-loading workers" in r.getMessage()]
    assert "a training step" in line and "--dataloader_num_workers" in line
    chosen = int(line.split(" data-loading workers")[0].rsplit(" ", 1)[1])
    assert torch.get_num_threads() == threads  # the model's threads are given back after training

    # The timing draws nothing from the run's random generators: the same run with that number given trains alike.
    assert _train(motion_data, micro_config, tmp_path / "given", "--dataloader_num_workers", str(chosen)) == 0
    results = [json.loads((tmp_path / run / "train_results.json").read_text()) for run in ("default", "given")]
    assert [(r["train_loss"], r["eval_loss"]) for r in results][0] == [
        (r["train_loss"], r["eval_loss"]) for r in results
    ][1]


def test_auto_is_the_default_of_every_trainer_command():
    from vidcls.cli import pretrain, train

    for command in (train, pretrain):
        assert (
            command.build_parser().parse_args(["--output_dir", "x", "--data_dir", "d"]).dataloader_num_workers == AUTO
        )


def test_pretrain_chooses_its_workers_too(motion_data, micro_config, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="vidcls.engine.workers"):
        assert main(["pretrain", "--data_dir", str(motion_data), "--config_name", str(micro_config),
                     "--output_dir", str(tmp_path), "--sample_rate", "2", "--max_steps", "1", "--report_to", "none",
                     "--per_device_train_batch_size", "4", "--mask_ratio", "0.5"]) == 0  # fmt: skip
    assert any("a training step" in record.getMessage() for record in caplog.records)
