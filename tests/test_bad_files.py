"""Bad files never kill a run: skipped, named, counted and listed; --strict fails first instead."""

import json
import shutil

import pytest

from vidcls.cli import main

pytestmark = pytest.mark.usefixtures("shared_videos")

# Files that open but break further on: only decoding where clips are taken finds them.
OPEN_BUT_BROKEN = ("bad_corrupted.mp4", "bad_truncated.avi")


@pytest.fixture(scope="module")
def dataset_with_bad_files(tmp_path_factory, motion_data, real_dir, bad_videos):
    """The small motion dataset plus, in train and val, every broken file we know of."""
    root = tmp_path_factory.mktemp("bad") / "data"
    shutil.copytree(motion_data, root)
    for split in ("train", "val"):
        folder = root / split / "DriftEast"
        for path in bad_videos:
            shutil.copy(path, folder / f"bad_{path.name}")
        (folder / "bad_empty.avi").write_bytes(b"")
        (folder / "bad_text.avi").write_text("a text file renamed .avi\n" * 20)
        real = (real_dir / "mmaction2_test.mp4").read_bytes()
        (folder / "bad_truncated.mp4").write_bytes(real[: len(real) // 3])  # its index is lost: it does not open
        real = (real_dir / "v_ApplyEyeMakeup_g01_c01.avi").read_bytes()
        (folder / "bad_truncated.avi").write_bytes(real[: len(real) * 3 // 10])  # opens, ends at 30%
    return root


def _train(data_dir, output_dir, *extra):
    # The same broken files sit in train and val: --allow_duplicates lets the run reach them.
    return main(
        ["train", "--data_dir", str(data_dir), "--config_name", "tiny", "--output_dir", str(output_dir),
         "--num_train_epochs", "1", "--dataloader_num_workers", "0", "--allow_duplicates",
         "--per_device_train_batch_size", "16", "--clips", "8", *extra]
    )  # fmt: skip


def test_training_skips_and_lists_bad_files(dataset_with_bad_files, bad_videos, tmp_path):
    assert _train(dataset_with_bad_files, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "skipped_videos.json").read_text())
    listed = {entry["path"] for entry in report}
    bad_names = {f"bad_{p.name}" for p in bad_videos} | {"bad_empty.avi", "bad_text.avi", "bad_truncated.mp4"}
    bad_names |= set(OPEN_BUT_BROKEN)  # skipped from the start too, not trained on up to where they break
    for split in ("train", "val"):
        assert {str(dataset_with_bad_files / split / "DriftEast" / n) for n in bad_names} == {
            p for p in listed if f"/{split}/" in p
        }
    for entry in report:
        assert entry["reason"].startswith(entry["path"])  # each reason names its file
    assert json.loads((tmp_path / "out" / "train_results.json").read_text())["skipped_videos"] == len(report)


def test_strict_refuses_every_file_check_calls_an_error(dataset_with_bad_files, tmp_path, capsys):
    # The clips of the tiny model (16 frames every 4) and the 8 evaluation clips of _train, checked by vidcls check.
    check_flags = ["--num_frames", "16", "--sample_rate", "4", "--clips", "8", "--num_workers", "0"]
    report_file = tmp_path / "check.json"
    assert main(["check", str(dataset_with_bad_files), *check_flags, "--json_report", str(report_file)]) == 1
    check_errors = [f for f in json.loads(report_file.read_text())["files"] if f["error"]]
    capsys.readouterr()

    assert _train(dataset_with_bad_files, tmp_path / "out", "--strict") == 2
    [err] = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]  # one line (and a progress bar)
    assert f"--strict: {len(check_errors)} errors" in err  # the same count as check, test split included
    for found in check_errors:
        assert found["error"] in err
    assert all(name in err for name in OPEN_BUT_BROKEN)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_strict_refuses_copies_across_splits_too(dataset_with_bad_files, tmp_path, capsys):
    """Without --allow_duplicates, --strict lists the copies with the unreadable files, as check does."""
    code = main(
        ["train", "--data_dir", str(dataset_with_bad_files), "--config_name", "tiny", "--output_dir",
         str(tmp_path / "out"), "--strict", "--dataloader_num_workers", "0"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "the same file is in more than one split" in err and "bad_fixture.ogv" in err


def test_evaluation_names_the_videos_it_could_not_score(dataset_with_bad_files, tmp_path, micro_config):
    model_dir = tmp_path / "model"
    assert main(
        ["train", "--data_dir", str(dataset_with_bad_files), "--config_name", str(micro_config),
         "--output_dir", str(model_dir), "--max_steps", "1", "--dataloader_num_workers", "0",
         "--allow_duplicates", "--sample_rate", "2"]
    ) == 0  # fmt: skip
    out = tmp_path / "report.json"
    code = main(
        ["evaluate", "--model_dir", str(model_dir), "--data_dir", str(dataset_with_bad_files), "--split", "val",
         "--num_workers", "0", "--output_file", str(out)]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    skipped = {e["path"].rsplit("/", 1)[-1] for e in report["skipped_videos"]}
    assert len(skipped) == 9 and not skipped & set(OPEN_BUT_BROKEN)  # their first clips decode
    assert [e["path"].rsplit("/", 1)[-1] for e in report["partially_scored"]] == list(OPEN_BUT_BROKEN)
    assert report["num_videos"] == 18  # 16 good videos plus the partly readable ones
