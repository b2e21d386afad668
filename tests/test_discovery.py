import io
import tarfile

import pytest

from vidcls.data.discovery import LabelMaps, check_group_leakage, group_of, load_split, resolve_data_dir
from vidcls.errors import DatasetError


def make_layout(root, layout):
    """layout: {"train/ClassA": ["v_ClassA_g01_c01.avi", ...]} -> files (content irrelevant to discovery)."""
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).write_bytes(b"x")
    return root


def test_labels_are_sorted_class_folders(tmp_path):
    make_layout(tmp_path, {"train/Zebra": ["a.mp4"], "train/Apple": ["b.avi"], "train/Mango": ["c.MKV", "notes.txt"]})
    records, labels = load_split(tmp_path, "train")
    assert labels.label2id == {"Apple": 0, "Mango": 1, "Zebra": 2}
    assert labels.id2label == {0: "Apple", 1: "Mango", 2: "Zebra"}
    assert sorted((r.path.name, r.label) for r in records) == [("a.mp4", 2), ("b.avi", 0), ("c.MKV", 1)]


def test_missing_split_names_what_exists(tmp_path):
    make_layout(tmp_path, {"train/A": ["a.avi"]})
    with pytest.raises(DatasetError, match=r"val not found \(found: train\)"):
        load_split(tmp_path, "val")


def test_missing_data_dir(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_split(tmp_path / "nope", "train")


def test_empty_class_folder(tmp_path):
    make_layout(tmp_path, {"train/A": ["a.avi"], "train/B": ["readme.txt"]})
    with pytest.raises(DatasetError, match="B holds no videos"):
        load_split(tmp_path, "train")


def test_class_unknown_to_training(tmp_path):
    make_layout(tmp_path, {"train/A": ["a.avi"], "val/A": ["b.avi"], "val/C": ["c.avi"]})
    _, labels = load_split(tmp_path, "train")
    with pytest.raises(DatasetError, match="not trained on: C"):
        load_split(tmp_path, "val", labels)


def test_groups_from_ucf101_names():
    from pathlib import Path

    assert group_of(Path("train/Jump/v_Jump_g07_c03.avi")) == "Jump_g07"
    assert group_of(Path("train/Jump/clip.avi")) == "train/Jump/clip.avi"


def test_group_leakage_is_refused(tmp_path):
    make_layout(tmp_path, {"train/A": ["v_A_g01_c01.avi", "v_A_g02_c01.avi"], "test/A": ["v_A_g02_c02.avi"]})
    train, labels = load_split(tmp_path, "train")
    test, _ = load_split(tmp_path, "test", labels)
    with pytest.raises(DatasetError, match=r"A_g02 \(train, test\)"):
        check_group_leakage({"train": train, "test": test})
    check_group_leakage({"train": train[:1], "test": test})  # g01 vs g02: fine


def _add(tar, name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def test_tar_gz_dataset_is_extracted_once(tmp_path):
    archive = tmp_path / "UCF101_subset.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "UCF101_subset/train/A/v_A_g01_c01.avi")
        _add(tar, "UCF101_subset/val/A/v_A_g02_c01.avi")
    root = resolve_data_dir(archive)
    assert root == tmp_path / "UCF101_subset" / "UCF101_subset"
    records, labels = load_split(archive, "train")
    assert labels.names == ["A"] and len(records) == 1
    assert resolve_data_dir(archive) == root  # second call: no re-extraction


@pytest.mark.parametrize(
    ("name", "kind", "link", "message"),
    [
        ("../evil.avi", tarfile.REGTYPE, "", "outside"),
        ("/abs/evil.avi", tarfile.REGTYPE, "", "outside"),
        ("data/link.avi", tarfile.SYMTYPE, "/etc/passwd", "link member"),
        ("data/hard.avi", tarfile.LNKTYPE, "data/a.avi", "link member"),
    ],
)
def test_hostile_archives_are_refused(tmp_path, name, kind, link, message):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, name, kind=kind, link=link)
    with pytest.raises(DatasetError, match=message):
        resolve_data_dir(archive)
    assert not (tmp_path / "evil.avi").exists()


def test_label_maps_roundtrip():
    labels = LabelMaps.from_names(["b", "a"])
    assert labels.names == ["a", "b"]
