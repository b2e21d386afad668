"""Bad files never kill a run: skipped, named, counted and listed; --strict fails first instead."""

import json
import shutil

import pytest

from conftest import BAD_VIDEOS, REAL_VIDEOS, needs_shared_videos
from vidcls.cli import main

pytestmark = needs_shared_videos


@pytest.fixture(scope="module")
def dataset_with_bad_files(tmp_path_factory, motion_data):
    """The small motion dataset plus, in train and val, every broken file we know of."""
    root = tmp_path_factory.mktemp("bad") / "data"
    shutil.copytree(motion_data, root)
    for split in ("train", "val"):
        folder = root / split / "DriftEast"
        for path in BAD_VIDEOS:
            shutil.copy(path, folder / f"bad_{path.name}")
        (folder / "bad_empty.avi").write_bytes(b"")
        (folder / "bad_text.avi").write_text("a text file renamed .avi\n" * 20)
        real = (REAL_VIDEOS[0].parent / "mmaction2_test.mp4").read_bytes()
        (folder / "bad_truncated.mp4").write_bytes(real[: len(real) // 3])
    return root


def _train(data_dir, output_dir, *extra):
    return main(
        ["train", "--data_dir", str(data_dir), "--config_name", "tiny", "--output_dir", str(output_dir),
         "--num_train_epochs", "1", "--dataloader_num_workers", "0", "--dataloader_persistent_workers", "false",
         "--per_device_train_batch_size", "16", "--eval_clips", "8", *extra]
    )  # fmt: skip


def test_training_skips_and_lists_bad_files(dataset_with_bad_files, tmp_path):
    assert _train(dataset_with_bad_files, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "skipped_videos.json").read_text())
    listed = {entry["path"] for entry in report}
    bad_names = {f"bad_{p.name}" for p in BAD_VIDEOS} | {"bad_empty.avi", "bad_text.avi", "bad_truncated.mp4"}
    for split in ("train", "val"):
        # corrupted.mp4 opens and fails only past frame 28: the val clips reach that far, training's may not.
        expected = bad_names - ({"bad_corrupted.mp4"} if split == "train" else set())
        assert {str(dataset_with_bad_files / split / "DriftEast" / n) for n in expected} <= listed
    for entry in report:
        assert entry["reason"].startswith(entry["path"])  # each reason names its file
    assert json.loads((tmp_path / "out" / "train_results.json").read_text())["skipped_videos"] == len(report)


def test_strict_fails_before_training_listing_every_bad_file(dataset_with_bad_files, tmp_path, capsys):
    assert _train(dataset_with_bad_files, tmp_path / "out", "--strict") == 2
    err = capsys.readouterr().err
    assert "--strict" in err and "bad_empty.avi" in err and "bad_fixture.ogv" in err and "bad_truncated.mp4" in err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_evaluation_names_the_videos_it_could_not_score(dataset_with_bad_files, tmp_path, micro_config):
    model_dir = tmp_path / "model"
    assert main(
        ["train", "--data_dir", str(dataset_with_bad_files), "--config_name", str(micro_config),
         "--output_dir", str(model_dir), "--max_steps", "1", "--dataloader_num_workers", "0",
         "--dataloader_persistent_workers", "false", "--sample_rate", "2"]
    ) == 0  # fmt: skip
    out = tmp_path / "report.json"
    code = main(
        ["evaluate", "--model_dir", str(model_dir), "--data_dir", str(dataset_with_bad_files), "--split", "val",
         "--num_workers", "0", "--output_file", str(out)]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    skipped = {e["path"].rsplit("/", 1)[-1] for e in report["skipped_videos"]}
    assert len(skipped) == 9 and "bad_corrupted.mp4" not in skipped  # its first clips decode
    assert [e["path"].rsplit("/", 1)[-1] for e in report["partially_scored"]] == ["bad_corrupted.mp4"]
    assert report["num_videos"] == 17  # 16 good videos plus the partly readable one
