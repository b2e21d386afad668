"""Long-run behaviour: determinism, resume after a kill, multi-process training, output folder checks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vidcls.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _args(data, config, output_dir, epochs=3):
    return ["train", "--data_dir", str(data), "--config_name", str(config), "--output_dir", str(output_dir),
            "--num_train_epochs", str(epochs), "--sample_rate", "2", "--learning_rate", "1e-3", "--seed", "7",
            "--per_device_train_batch_size", "4", "--dataloader_num_workers", "0",
            "--dataloader_persistent_workers", "false"]  # fmt: skip


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
