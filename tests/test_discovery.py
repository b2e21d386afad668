import io
import os
import shutil
import tarfile
from collections import namedtuple

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
    assert root == tmp_path / "UCF101_subset.tar.gz.extracted" / "UCF101_subset"
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
        ("data/sparse.avi", tarfile.GNUTYPE_SPARSE, "", "special member"),
        ("data/fifo.avi", tarfile.FIFOTYPE, "", "special member"),
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


# --- where archives go, and what they may take ------------------------------------------------------------------


def write_archive(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            _add(tar, name, data)
    return path


def test_archive_never_extracts_over_a_user_folder(tmp_path, caplog):
    mine = tmp_path / "X" / "thatfile"
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own work")
    archive = write_archive(tmp_path / "X.tar.gz", {"X/thatfile": b"from the archive", "X/train/A/a.avi": b"x"})
    with caplog.at_level("INFO", logger="vidcls.data.archives"):
        root = resolve_data_dir(archive)
    assert mine.read_bytes() == b"the user's own work" and sorted(mine.parent.iterdir()) == [mine]
    assert root == tmp_path / "X.tar.gz.extracted" / "X"
    assert (root / "thatfile").read_bytes() == b"from the archive"
    assert f"extracted {archive} to {tmp_path / 'X.tar.gz.extracted'}" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X", "X.tar.gz", "X.tar.gz.extracted"]  # no leftovers


def test_changed_archive_is_extracted_again(tmp_path):
    archive = write_archive(tmp_path / "d.tar.gz", {"train/A/a.avi": b"old"})
    root = resolve_data_dir(archive)
    (root / "train/A/a.avi").write_bytes(b"edited")  # unchanged archive: reused as it is, not extracted again
    assert resolve_data_dir(archive) == root and (root / "train/A/a.avi").read_bytes() == b"edited"
    write_archive(archive, {"train/B/b.avi": b"new"})
    os.utime(archive, ns=(1, 1))  # a changed mtime even on coarse clocks
    assert resolve_data_dir(archive) == root
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.avi")) == ["train/B/b.avi"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.tar.gz", "d.tar.gz.extracted"]


def test_a_target_folder_vidcls_did_not_make_is_left_alone(tmp_path):
    theirs = tmp_path / "d.tar.gz.extracted" / "notes.txt"
    theirs.parent.mkdir()
    theirs.write_text("keep me")
    archive = write_archive(tmp_path / "d.tar.gz", {"train/A/a.avi": b"x"})
    with pytest.raises(DatasetError) as err:
        resolve_data_dir(archive)
    assert "\n" not in str(err.value) and f"{theirs.parent} exists and was not made by vidcls" in str(err.value)
    assert theirs.read_text() == "keep me" and sorted(theirs.parent.iterdir()) == [theirs]


def test_archive_named_only_a_suffix(tmp_path):
    (tmp_path / "arch").mkdir()
    archive = write_archive(tmp_path / "arch" / ".tar.gz", {"train/A/a.avi": b"x", "val/A/b.avi": b"x"})
    records, labels = load_split(archive, "train")
    assert labels.names == ["A"] and records[0].path == tmp_path / "arch/.tar.gz.extracted/train/A/a.avi"


def assert_nothing_extracted(folder, archive):
    assert sorted(folder.iterdir()) == [archive]  # no target, no half-written temporary folder


def test_archive_bigger_than_the_limit_is_refused(tmp_path):
    archive = write_archive(tmp_path / "bomb.tar.gz", {"train/A/a.avi": b"x", "train/A/zeros.avi": bytes(3_000_000)})
    assert archive.stat().st_size < 20_000  # compresses ~1000:1, as bombs do
    with pytest.raises(DatasetError) as err:
        resolve_data_dir(archive, max_extract_gb=0.001)
    message = str(err.value)
    assert "\n" not in message and str(archive) in message and "--max_extract_gb 0.001" in message, message
    assert_nothing_extracted(tmp_path, archive)
    assert resolve_data_dir(archive, max_extract_gb=0.004).is_dir()  # a larger limit lets it through


def test_archive_with_too_many_members_is_refused(tmp_path):
    archive = write_archive(tmp_path / "many.tar.gz", {f"train/A/{i}.avi": b"x" for i in range(5)})
    with pytest.raises(DatasetError) as err:
        resolve_data_dir(archive, max_archive_members=4)
    message = str(err.value)
    assert "\n" not in message and str(archive) in message and "--max_archive_members 4" in message, message
    assert_nothing_extracted(tmp_path, archive)


def test_archive_needs_free_disk_space(tmp_path, monkeypatch):
    archive = write_archive(tmp_path / "big.tar.gz", {"train/A/a.avi": bytes(2_000_000)})
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(DatasetError) as err:
        resolve_data_dir(archive)
    message = str(err.value)
    assert "\n" not in message and str(archive) in message and "free" in message, message
    assert_nothing_extracted(tmp_path, archive)


def test_failed_extraction_leaves_no_partial_folder(tmp_path):
    archive = write_archive(tmp_path / "cut.tar.gz", {"train/A/a.avi": b"x", "train/A/b.avi": bytes(200_000)})
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])  # the stream ends inside a member
    with pytest.raises(DatasetError, match="cannot extract"):
        resolve_data_dir(archive)
    assert_nothing_extracted(tmp_path, archive)
