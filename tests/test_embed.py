"""vidcls embed: one row per video, with its file and label, the same numbers on every run."""

import csv
import sys

import numpy as np
import pytest

from vidcls.cli import main


@pytest.fixture(scope="module")
def model_dir(motion_data, micro_config, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("embed_model")
    assert main(["train", "--data_dir", str(motion_data), "--config_name", str(micro_config), "--output_dir",
                 str(output_dir), "--num_train_epochs", "1", "--sample_rate", "2", "--clips", "2",
                 "--per_device_train_batch_size", "8", "--dataloader_num_workers", "0"]) == 0  # fmt: skip
    return output_dir


def test_one_row_per_video_with_file_label_and_split(model_dir, motion_data, tmp_path):
    output = tmp_path / "emb.npy"
    assert main(["embed", str(motion_data), "--model_dir", str(model_dir), "--output", str(output),
                 "--num_workers", "0", "--device", "cpu"]) == 0  # fmt: skip
    vectors = np.load(output)
    rows = list(csv.DictReader((tmp_path / "emb.csv").open()))
    assert vectors.shape == (48, 32) and vectors.dtype == np.float32  # 48 videos, hidden size 32
    assert len(rows) == 48 and {row["split"] for row in rows} == {"train", "val", "test"}
    for row in rows:
        assert row["label"] in row["file"]  # v_<Class>_gNN_cMM.avi under <Class>/
    assert np.isfinite(vectors).all() and vectors.std(axis=0).max() > 0

    again = tmp_path / "again.npz"
    assert main(["embed", str(motion_data), "--model_dir", str(model_dir), "--output", str(again),
                 "--num_workers", "2"]) == 0  # fmt: skip
    saved = np.load(again)
    assert np.array_equal(saved["embeddings"], vectors)  # decoded by workers this time: the same numbers
    assert list(saved["files"]) == [row["file"] for row in rows]


def test_a_folder_of_videos_and_a_pretrained_encoder(motion_data, micro_config, tmp_path):
    pretrained = tmp_path / "mae"
    assert main(["pretrain", "--data_dir", str(motion_data), "--config_name", str(micro_config), "--output_dir",
                 str(pretrained), "--num_train_epochs", "1", "--sample_rate", "2",
                 "--dataloader_num_workers", "0"]) == 0  # fmt: skip
    output = tmp_path / "emb.npz"
    assert main(["embed", str(motion_data / "test" / "DriftEast"), "--model_dir", str(pretrained),
                 "--output", str(output), "--num_workers", "0"]) == 0  # fmt: skip
    saved = np.load(output)
    assert saved["embeddings"].shape == (2, 32) and list(saved["labels"]) == ["", ""]


def test_parquet_holds_the_same_rows(model_dir, motion_data, tmp_path):
    import pyarrow.parquet as pq

    args = ["embed", str(motion_data), "--model_dir", str(model_dir), "--num_workers", "0"]
    assert main([*args, "--output", str(tmp_path / "e.parquet")]) == 0
    assert main([*args, "--output", str(tmp_path / "e.npz")]) == 0
    table, saved = pq.read_table(tmp_path / "e.parquet").to_pydict(), np.load(tmp_path / "e.npz")
    assert table["file"] == list(saved["files"]) and table["label"] == list(saved["labels"])
    assert np.array_equal(np.array(table["embedding"], dtype=np.float32), saved["embeddings"])


def test_parquet_without_pyarrow_is_one_line_naming_the_extra(model_dir, motion_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as on a machine without the parquet extra: import fails
    assert (
        main(["embed", str(motion_data), "--model_dir", str(model_dir), "--output", str(tmp_path / "e.parquet")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "vidcls[parquet]" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_clips_choose_the_clips_averaged_per_video(model_dir, motion_data, tmp_path, capsys):
    vectors = {}
    for clips in ("1", "4"):
        output = tmp_path / f"emb{clips}.npy"
        assert main(["embed", str(motion_data / "test"), "--model_dir", str(model_dir), "--output", str(output),
                     "--clips", clips, "--num_workers", "0", "--device", "cpu"]) == 0  # fmt: skip
        vectors[clips] = np.load(output)
    assert vectors["1"].shape == vectors["4"].shape and not np.allclose(vectors["1"], vectors["4"])
    assert main(["embed", str(motion_data), "--model_dir", str(model_dir), "--output", str(tmp_path / "e.npy"),
                 "--clips", "0"]) == 2  # fmt: skip
    assert "--clips must be a positive integer" in capsys.readouterr().err
