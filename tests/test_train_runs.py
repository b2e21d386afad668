"""Long-run behaviour: determinism, resume after a kill or from a checkpoint cut short, multi-process training,
output folder checks, the Trainer flags users set most, and the same file in two splits."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidcls.cli import main
from vidcls.engine.checkpoints import checkpoint_problem

ROOT = Path(__file__).resolve().parents[1]


def _args(data, config, output_dir, epochs=3):
    return ["train", "--data_dir", str(data), "--config_name", str(config), "--output_dir", str(output_dir),
            "--num_train_epochs", str(epochs), "--sample_rate", "2", "--learning_rate", "1e-3", "--seed", "7",
            "--per_device_train_batch_size", "4", "--dataloader_num_workers", "0"]  # fmt: skip


def _final_metrics(output_dir: Path) -> dict:
    metrics = json.loads((output_dir / "train_results.json").read_text())
    return {k: v for k, v in metrics.items() if k.startswith("eval_") and "runtime" not in k and "per_second" not in k}


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll until ``path`` exists (a condition, not a fixed delay)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "training ended before the checkpoint appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def test_same_seed_same_metrics_and_resume_after_sigkill(motion_data, micro_config, tmp_path):
    assert main(_args(motion_data, micro_config, tmp_path / "a")) == 0
    assert main(_args(motion_data, micro_config, tmp_path / "b")) == 0
    assert _final_metrics(tmp_path / "a") == _final_metrics(tmp_path / "b")  # deterministic on a CPU
    assert len(list((tmp_path / "a").glob("checkpoint-*"))) <= 2  # --save_total_limit 2, the default

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(
        [sys.executable, "-m", "vidcls", *_args(motion_data, micro_config, killed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    _wait_for(killed / "checkpoint-4" / "trainer_state.json", process)  # end of epoch 1 of 3
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "train_results.json").exists()  # it really was cut short

    assert main(_args(motion_data, micro_config, killed)) == 0  # the same command resumes
    assert _final_metrics(killed) == _final_metrics(tmp_path / "a")


def test_partial_checkpoint_is_not_resumed_from(motion_data, micro_config, tmp_path):
    output_dir = tmp_path / "out"
    assert main(_args(motion_data, micro_config, output_dir, epochs=1)) == 0
    partial = output_dir / "checkpoint-99"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half a file")
    assert main(_args(motion_data, micro_config, output_dir, epochs=2)) == 0
    assert not partial.exists()
    assert json.loads((output_dir / "train_results.json").read_text())["epoch"] == 2


def test_unwritable_output_dir_fails_before_training(motion_data, micro_config, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(_args(motion_data, micro_config, blocker / "out")) == 2
    assert "is not writable" in capsys.readouterr().err


def test_torchrun_two_processes_counts_each_video_once(motion_data, micro_config, tmp_path):
    output_dir = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "vidcls",
         *_args(motion_data, micro_config, output_dir, epochs=1)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((output_dir / "train_results.json").read_text())
    assert metrics["eval_num_videos"] == 16 and metrics["eval_num_clips"] == 16 * 4  # no padded duplicates
    # 16 training videos, batch 4 per process, 2 processes: 2 steps per epoch.
    state = json.loads(next(output_dir.glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["global_step"] == 2


def test_full_disk_fails_before_training(motion_data, micro_config, tmp_path, capsys, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    assert main(_args(motion_data, micro_config, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "MB free, a checkpoint needs about" in err and not (tmp_path / "out" / "checkpoint-4").exists()


def test_trainer_flags_users_set_most(motion_data, micro_config, tmp_path):
    """No workers (the guide keeps workers alive: none to keep), accumulation, max_steps, 1 checkpoint, no reports."""
    output_dir = tmp_path / "out"
    args = ["train", "--data_dir", str(motion_data), "--config_name", str(micro_config), "--output_dir",
            str(output_dir), "--sample_rate", "2", "--per_device_train_batch_size", "4", "--num_train_epochs", "5",
            "--dataloader_num_workers", "0", "--gradient_accumulation_steps", "2", "--max_steps", "3",
            "--save_total_limit", "1", "--report_to", "none"]  # fmt: skip
    assert main(args) == 0
    # 16 videos in batches of 4, 2 batches per step: 2 steps an epoch, so 3 steps end halfway through epoch 2.
    assert json.loads((output_dir / "train_results.json").read_text())["epoch"] == 1.5
    [checkpoint] = output_dir.glob("checkpoint-*")  # saved at steps 2 and 3; one kept
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["max_steps"] == 3 and state["global_step"] in (2, 3)
    assert not (output_dir / "runs").exists()  # no TensorBoard logs


@pytest.mark.parametrize("flag", ["--fp16", "--bf16"])
def test_half_precision_on_a_cpu_is_one_line_before_the_data(flag, tmp_path, capsys):
    # --use_cpu: training on the CPU even where a GPU is visible. The data folder does not exist: not read yet.
    args = ["train", "--data_dir", str(tmp_path / "missing"), "--config_name", "tiny", "--output_dir",
            str(tmp_path / "out"), "--use_cpu", "true", flag]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag} needs a GPU" in err and "missing" not in err


def test_a_checkpoint_to_resume_from_that_is_not_there_is_one_line(tmp_path, capsys):
    args = ["train", "--data_dir", str(tmp_path / "missing"), "--config_name", "tiny", "--output_dir",
            str(tmp_path / "out"), "--resume_from_checkpoint", str(tmp_path / "out" / "checkpoint-9")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint-9 is not a folder" in err


def test_reporting_to_a_missing_integration_is_one_line_before_the_data(tmp_path, capsys, monkeypatch):
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    class NotInstalled:
        def __init__(self):
            raise RuntimeError("TensorBoardCallback requires tensorboard to be installed.")

    monkeypatch.setitem(INTEGRATION_TO_CALLBACK, "tensorboard", NotInstalled)
    base = ["train", "--data_dir", str(tmp_path / "missing"), "--config_name", "tiny", "--output_dir",
            str(tmp_path / "out"), "--report_to"]  # fmt: skip
    assert main([*base, "tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--report_to tensorboard: " in err and "--report_to none" in err
    assert main([*base, "tensorbored"]) == 2
    assert "not a reporting integration; choose from" in capsys.readouterr().err


def test_checkpoint_cut_short_is_skipped_for_the_one_before(motion_data, micro_config, tmp_path, caplog):
    output_dir = tmp_path / "out"
    assert main(_args(motion_data, micro_config, output_dir, epochs=2)) == 0
    expected = _final_metrics(output_dir)
    state = output_dir / "checkpoint-8" / "trainer_state.json"
    state.write_text(state.read_text()[:100])  # the disk filled up while it was written

    caplog.set_level(logging.INFO)
    assert main(_args(motion_data, micro_config, output_dir, epochs=2)) == 0  # no JSONDecodeError
    assert f"not resuming from {output_dir / 'checkpoint-8'}: trainer_state.json is cut short" in caplog.text
    assert f"resuming from {output_dir / 'checkpoint-4'}" in caplog.text
    assert _final_metrics(output_dir) == expected  # epoch 2 trained again from epoch 1's checkpoint


def test_any_file_cut_short_makes_a_checkpoint_incomplete(motion_data, micro_config, tmp_path):
    output_dir = tmp_path / "out"
    assert main(_args(motion_data, micro_config, output_dir, epochs=1)) == 0
    complete = output_dir / "checkpoint-4"
    assert checkpoint_problem(complete) is None
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "config.json"):
        copy = tmp_path / f"cut-{name}"
        shutil.copytree(complete, copy)
        data = (copy / name).read_bytes()
        (copy / name).write_bytes(data[: len(data) // 2])
        assert checkpoint_problem(copy).startswith(f"{name} is cut short or unreadable"), name
    (copy / "config.json").write_bytes((complete / "config.json").read_bytes())
    (copy / "model.safetensors").unlink()
    assert checkpoint_problem(copy).startswith("no model weights")


def test_the_same_file_in_two_splits_is_refused_unless_allowed(motion_data, micro_config, tmp_path, capsys, caplog):
    data = tmp_path / "data"
    shutil.copytree(motion_data, data)
    original = next((data / "train" / "DriftEast").iterdir())
    shutil.copy(original, data / "val" / "DriftEast" / "renamed.avi")  # a copy under another name
    (data / "test" / "DriftEast" / "link.avi").symlink_to(original)  # and a link to it

    args = _args(data, micro_config, tmp_path / "out", epochs=1)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the same file is in more than one split" in err and "--allow_duplicates" in err
    assert f"train: {original} = val: {data / 'val' / 'DriftEast' / 'renamed.avi'} = test: " in err
    assert not (tmp_path / "out" / "checkpoint-4").exists()

    caplog.set_level(logging.WARNING)
    assert main([*args, "--max_steps", "1", "--allow_duplicates"]) == 0
    assert "--allow_duplicates: the same file is in more than one split (1 such files)" in caplog.text
