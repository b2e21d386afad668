"""Dataset layouts: split folders, class folders split by group, official lists, manifests, archives, hf://.

Discovery does not decode, so placeholder files stand in for videos, except in the one test that trains.
"""

import json
import tarfile
from pathlib import Path

import pytest

from vidcls.data.discovery import LabelMaps
from vidcls.data.layouts import LayoutOptions, load_dataset
from vidcls.errors import ConfigError, DatasetError


def touch(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    return root


def ucf_names(classes=("Jump", "Run", "Swim"), groups=20, clips=3) -> list[str]:
    return [
        f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi" for c in classes for g in range(1, groups + 1) for k in range(1, clips + 1)
    ]


def groups_by_split(dataset) -> dict[str, set[str]]:
    return {split: {r.group for r in records} for split, records in dataset.splits.items()}


def find_group_leaks(splits) -> set[str]:
    """Groups with clips in more than one split."""
    seen, leaks = {}, set()
    for split, records in splits.items():
        for record in records:
            if seen.setdefault(record.group, split) != split:
                leaks.add(record.group)
    return leaks


def assert_one_line(err: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


# --- the guide's split folders -------------------------------------------------------------------------------


def test_split_folders(tmp_path):
    touch(tmp_path, "train/B/v_B_g01_c01.avi", "train/A/v_A_g01_c01.avi", "val/A/v_A_g02_c01.avi", "test/B/x.mp4")
    touch(tmp_path, "lists/readme.txt")  # a folder of files only is not a split
    dataset = load_dataset(tmp_path)
    assert dataset.labels.names == ["A", "B"]
    assert {k: len(v) for k, v in dataset.splits.items()} == {"test": 1, "train": 2, "val": 1}
    assert dataset.splits["val"][0].group == "A_g02" and dataset.splits["val"][0].start is None


def test_split_folders_refuse_split_ratios_and_leaks(tmp_path):
    touch(tmp_path, "train/A/v_A_g01_c01.avi", "test/A/v_A_g01_c02.avi")
    with pytest.raises(DatasetError, match=r"A_g01 \(test, train\)"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="already has splits") as err:
        load_dataset(tmp_path, LayoutOptions(split_ratios=(0.8, 0.1, 0.1)))
    assert_one_line(err, "--split_ratios", "drop the flag")


def test_missing_split_names_flag_and_found(tmp_path):
    touch(tmp_path, "train/A/a.avi", "train/B/b.avi")
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path).records("val", "--eval_split")
    assert_one_line(err, "--eval_split val", "found: train")


def test_given_labels_refuse_unknown_classes(tmp_path):
    touch(tmp_path, "test/A/a.avi", "test/C/c.avi")
    with pytest.raises(DatasetError, match="not trained on: C"):
        load_dataset(tmp_path, labels=LabelMaps.from_names(["A", "B"]))


# --- one folder of class folders, split by group ---------------------------------------------------------------


def test_class_folders_split_by_group(tmp_path):
    touch(tmp_path, *ucf_names())
    dataset = load_dataset(tmp_path, LayoutOptions(split_ratios=(0.7, 0.15, 0.15), seed=1))
    assert dataset.labels.names == ["Jump", "Run", "Swim"]
    assert not find_group_leaks(dataset.splits)
    sizes = {split: len(records) for split, records in dataset.splits.items()}
    assert sizes == {"train": 126, "val": 27, "test": 27}  # 20 equal groups per class: exactly 14/3/3 of them
    for records in dataset.splits.values():
        assert {r.label for r in records} == {0, 1, 2}  # every class in every split


def test_split_is_reproducible_and_depends_on_seed(tmp_path):
    touch(tmp_path, *ucf_names(groups=12, clips=2))
    first, again = (groups_by_split(load_dataset(tmp_path, LayoutOptions(seed=5))) for _ in range(2))
    other = groups_by_split(load_dataset(tmp_path, LayoutOptions(seed=6)))
    assert first == again and first != other


def test_uneven_groups_follow_ratios_approximately(tmp_path):
    # 2-6 clips per group, one group per video name pattern: ratios hold by clip count, within a few clips.
    names = [f"C{c}/v_C{c}_g{g:02d}_c{k:02d}.avi" for c in range(4) for g in range(30) for k in range(2 + g % 5)]
    touch(tmp_path, *names)
    dataset = load_dataset(tmp_path, LayoutOptions(split_ratios=(0.6, 0.2, 0.2), seed=3))
    total = len(names)
    for split, share in zip(("train", "val", "test"), (0.6, 0.2, 0.2), strict=True):
        assert abs(len(dataset.splits[split]) / total - share) < 0.05
    assert not find_group_leaks(dataset.splits)


def test_one_group_per_video_without_pattern(tmp_path):
    touch(tmp_path, *(f"{c}/clip{i}.mp4" for c in "AB" for i in range(10)))
    dataset = load_dataset(tmp_path)
    assert sum(map(len, dataset.splits.values())) == 20
    assert len({r.group for records in dataset.splits.values() for r in records}) == 20


def test_group_pattern_keeps_an_actor_in_one_split(tmp_path):
    touch(tmp_path, *(f"{c}/person{p}_take{t}.mp4" for c in "ABC" for p in range(8) for t in range(3)))
    dataset = load_dataset(tmp_path, LayoutOptions(group_pattern=r"(person\d+)_"))
    assert {r.group for records in dataset.splits.values() for r in records} == {f"person{p}" for p in range(8)}
    assert not find_group_leaks(dataset.splits)


def test_group_pattern_that_does_not_match(tmp_path):
    touch(tmp_path, "A/person1_x.mp4", "B/other.mp4")
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path, LayoutOptions(group_pattern=r"(person\d+)"))
    assert_one_line(err, "--group_pattern", "other.mp4")


def test_a_single_class_folder_is_refused(tmp_path):
    touch(tmp_path, "Train/A/a.avi", "Train/B/b.avi")  # "Train" is not a split name: one class
    with pytest.raises(DatasetError, match="single class folder"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("0.7,0.3", None, 1, 0), "--split_ratios"),
        (("0.7,0.2,0.2", None, 1, 0), "summing to 1"),
        (("a,b,c", None, 1, 0), "three numbers"),
        ((None, "person\\d+", 1, 0), "needs a (group)"),
        ((None, "(unclosed", 1, 0), "not a regex"),
        ((None, None, 0, 0), "--fold 0"),
    ],
)
def test_bad_layout_flags(flags, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LayoutOptions.from_flags(*flags)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_extract_gb": 0}, "--max_extract_gb 0: expected a size in GB above 0"),
        ({"max_extract_gb": float("nan")}, "--max_extract_gb nan"),
        ({"max_archive_members": 0}, "--max_archive_members 0: expected a count of 1 or more"),
    ],
)
def test_bad_archive_limits(limits, message):
    with pytest.raises(ConfigError, match=message):
        LayoutOptions.from_flags(None, None, 1, 0, **limits)


# --- official UCF101 and HMDB51 lists ---------------------------------------------------------------------------


def make_ucf101(root: Path) -> Path:
    names = ucf_names(classes=("ApplyEyeMakeup", "Archery"), groups=10, clips=2)
    touch(root / "UCF-101", *names)
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train = [n for n in names if "_g01_" not in n and "_g02_" not in n]
    (lists / "trainlist01.txt").write_text("".join(f"{n} {1 + n.startswith('Archery')}\r\n" for n in train))
    (lists / "testlist01.txt").write_text("".join(f"{n}\n" for n in names if n not in train) + "\n")
    return root


def test_ucf101_lists_with_val_carved_by_group(tmp_path):
    dataset = load_dataset(make_ucf101(tmp_path), LayoutOptions(seed=2))
    assert dataset.labels.names == ["ApplyEyeMakeup", "Archery"]
    groups = groups_by_split(dataset)
    assert groups["test"] == {f"{c}_g{g:02d}" for c in ("ApplyEyeMakeup", "Archery") for g in (1, 2)}
    assert len(groups["train"]) + len(groups["val"]) == 16 and groups["val"]
    assert not find_group_leaks(dataset.splits)
    archery = [r for r in dataset.splits["test"] if "Archery" in r.path.name]
    assert {r.label for r in archery} == {1} and archery[0].path.is_file()
    assert groups == groups_by_split(load_dataset(tmp_path, LayoutOptions(seed=2)))


def test_ucf101_missing_fold_and_bad_line(tmp_path):
    make_ucf101(tmp_path)
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path, LayoutOptions(fold=2))
    assert_one_line(err, "--fold 2", "trainlist02.txt", "folds found: 1")
    with (tmp_path / "ucfTrainTestlist" / "trainlist01.txt").open("a") as file:
        file.write("Archery/v_Archery_g05_c01.avi 7\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path)
    assert_one_line(err, "trainlist01.txt line 33", "class index 7")


def test_hmdb51_lists(tmp_path):
    lists = tmp_path / "testTrainMulti_7030_splits"
    lists.mkdir()
    for label in ("brush_hair", "cartwheel"):
        names = [f"{label}_video{i}.avi" for i in range(10)]
        touch(tmp_path / "hmdb51_org" / label, *names)
        usage = ["1"] * 6 + ["2"] * 3 + ["0"]
        (lists / f"{label}_test_split1.txt").write_text(
            "".join(f"{n} {u} \n" for n, u in zip(names, usage, strict=True))
        )
    dataset = load_dataset(tmp_path, LayoutOptions(split_ratios=(0.5, 0.25, 0.25)))
    assert dataset.labels.names == ["brush_hair", "cartwheel"]
    assert len(dataset.splits["test"]) == 6
    assert len(dataset.splits["train"]) + len(dataset.splits["val"]) == 12 and dataset.splits["val"]
    assert not any("video9" in str(r.path) for records in dataset.splits.values() for r in records)  # 0: unused
    assert dataset.splits["test"][0].path == tmp_path / "hmdb51_org" / "brush_hair" / "brush_hair_video6.avi"


# --- manifests ----------------------------------------------------------------------------------------------------


def test_csv_manifest_with_splits_groups_and_segments(tmp_path):
    touch(tmp_path, "videos/a.mp4", "videos/b.mp4", "videos/c.mp4")
    manifest = tmp_path / "meta" / "list.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "path,label,group,start,end,split\n"
        "../videos/a.mp4,Jump,actor1,0,2.5,train\n"
        "../videos/a.mp4,Run,actor1,2.5,,train\n"
        f"{tmp_path / 'videos/b.mp4'},Run,actor2,,,val\n"
        "../videos/c.mp4,Jump,,,,test\n"
    )
    dataset = load_dataset(manifest, LayoutOptions(allow_outside_paths=True))  # videos outside meta/: allowed
    train = dataset.splits["train"]
    assert [(r.label, r.group, r.start, r.end) for r in train] == [(0, "actor1", 0.0, 2.5), (1, "actor1", 2.5, None)]
    assert train[0].path.resolve() == (tmp_path / "videos/a.mp4").resolve()
    assert dataset.splits["val"][0].group == "actor2"
    assert dataset.splits["test"][0].group.endswith("c.mp4")  # no group: one group per video


def test_jsonl_manifest_without_splits_is_split_by_group(tmp_path):
    touch(tmp_path, *(f"v/{c}{i}.mp4" for c in "AB" for i in range(20)))
    lines = [{"path": f"v/{c}{i}.mp4", "label": c, "group": f"{c}{i // 2}"} for c in "AB" for i in range(20)]
    lines[0].update(start=1, end=3.5)
    (tmp_path / "all.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n\n")
    dataset = load_dataset(tmp_path / "all.jsonl", LayoutOptions(split_ratios=(0.6, 0.2, 0.2)))
    assert [len(dataset.splits[s]) for s in ("train", "val", "test")] == [24, 8, 8]
    assert not find_group_leaks(dataset.splits)
    first = next(r for records in dataset.splits.values() for r in records if r.path.name == "A0.mp4")
    assert (first.start, first.end) == (1.0, 3.5)


@pytest.mark.parametrize(
    ("suffix", "content", "parts"),
    [
        (".csv", "path,label\nok.mp4,A\nmissing.mp4,A\n", ["line 3", "missing.mp4", "not found"]),
        (".csv", "path,label,colour\nok.mp4,A,red\n", ["line 1", "unknown 'colour'"]),
        (".csv", "file,label\nok.mp4,A\n", ["line 1", "missing path"]),
        (".csv", "path,label,start\nok.mp4,A,0\nok.mp4,A,soon\n", ["line 3", "start 'soon' is not a number"]),
        (".csv", "path,label,start,end\nok.mp4,A,3,2\n", ["line 2", "end 2.0 is not after start 3.0"]),
        (".csv", "path,label\nok.mp4,A,extra\n", ["line 2", "more values"]),
        (".csv", "path,label,split\nok.mp4,A,dev\n", ["line 2", "split 'dev'"]),
        (".csv", "path,label\nok.mp4,\n", ["line 2", "empty label"]),
        (".csv", "path,label\n", ["has no rows"]),
        (".jsonl", '{"path": "ok.mp4", "label": "A"}\n{"path": "ok.mp4"\n', ["line 2", "not JSON"]),
        (".jsonl", '{"path": "ok.mp4", "label": "A", "fps": 5}\n', ["line 1", "unknown 'fps'"]),
        (".jsonl", '{"path": "ok.mp4", "label": "A", "end": "x"}\n', ["line 1", "end 'x'"]),
        (".jsonl", '["ok.mp4", "A"]\n', ["line 1", "JSON object"]),
        (
            ".jsonl",
            '{"path": "ok.mp4", "label": "A", "split": "train"}\n{"path": "ok.mp4", "label": "A"}\n',
            ["some rows have a split"],
        ),
    ],
)
def test_bad_manifest_rows_are_one_line_errors(tmp_path, suffix, content, parts):
    touch(tmp_path, "ok.mp4")
    manifest = tmp_path / f"manifest{suffix}"
    manifest.write_text(content)
    with pytest.raises(DatasetError) as err:
        load_dataset(manifest)
    assert_one_line(err, f"manifest{suffix}", *parts)


@pytest.mark.parametrize("how", ["dots", "absolute", "symlink"])
def test_local_manifest_paths_outside_its_folder_need_the_flag(tmp_path, how):
    secret = touch(tmp_path, "elsewhere/secret.mp4") / "elsewhere/secret.mp4"
    data = touch(tmp_path / "data", "ok.mp4", "ok2.mp4")
    path = {"dots": "../elsewhere/secret.mp4", "absolute": str(secret), "symlink": "link.mp4"}[how]
    if how == "symlink":
        (data / "link.mp4").symlink_to(secret)  # inside by name, outside once resolved
    manifest = data / "list.csv"
    manifest.write_text(f"path,label\nok.mp4,A\n{path},B\nok2.mp4,B\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(manifest)
    assert_one_line(err, f"{manifest} line 3", path, f"outside {data}", "--allow_outside_paths")
    dataset = load_dataset(manifest, LayoutOptions(split_ratios=(0.4, 0.3, 0.3), allow_outside_paths=True))
    assert sum(map(len, dataset.splits.values())) == 3


def test_huggingface_video_folder_paths_outside_need_the_flag(tmp_path):
    touch(tmp_path, "outside.mp4", "data/train/A/a.mp4", "data/train/B/b.mp4")
    (tmp_path / "data/metadata.jsonl").write_text(
        '{"file_name": "train/A/a.mp4", "label": "A"}\n{"file_name": "../outside.mp4", "label": "B"}\n'
    )
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path / "data")
    assert_one_line(err, "metadata.jsonl line 2", "../outside.mp4", "--allow_outside_paths")


def test_huggingface_video_folder(tmp_path):
    touch(tmp_path, *(f"{s}/{c}{i}.mp4" for s in ("train", "test") for c in "AB" for i in range(2)))
    rows = [f"{s}/{c}{i}.mp4,{c},anything" for s in ("train", "test") for c in "AB" for i in range(2)]
    (tmp_path / "metadata.csv").write_text("file_name,label,caption\n" + "\n".join(rows) + "\n")
    dataset = load_dataset(tmp_path)
    assert {k: len(v) for k, v in dataset.splits.items()} == {"train": 4, "test": 4}
    assert dataset.labels.names == ["A", "B"]


# --- archives and the Hub ---------------------------------------------------------------------------------------


def make_archive(tmp_path: Path) -> Path:
    """A .tar.gz whose top level holds a manifest next to a single folder of videos."""
    source = touch(tmp_path / "src", *(f"videos/{c}{i}.mp4" for c in "AB" for i in range(6)))
    rows = "".join(f"videos/{c}{i}.mp4,{c}\n" for c in "AB" for i in range(6))
    (source / "metadata.csv").write_text("file_name,label\n" + rows)
    archive = tmp_path / "clips.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source), recursive=False)
    return archive


def test_archive_with_a_manifest_at_its_top(tmp_path):
    dataset = load_dataset(make_archive(tmp_path), LayoutOptions(split_ratios=(0.5, 0.25, 0.25)))
    assert sum(map(len, dataset.splits.values())) == 12
    assert (tmp_path / "clips.tar.gz.extracted" / ".vidcls_extracted").exists()


@pytest.mark.parametrize(
    ("listing", "rows"),
    [
        ("metadata.csv", "file_name,label\nvideos/A0.mp4,A\n../secret.mp4,B\n"),
        ("metadata.jsonl", '{"file_name": "videos/A0.mp4", "label": "A"}\n{"file_name": "SECRET", "label": "B"}\n'),
        ("ucfTrainTestlist/trainlist01.txt", "videos/A0.mp4 1\n../secret.mp4 2\n"),
        ("list.csv", "path,label\nvideos/A0.mp4,A\n../secret.mp4,B\n"),  # read from the extracted folder
    ],
)
def test_archive_listings_never_reach_outside_the_archive(tmp_path, listing, rows):
    secret = touch(tmp_path, "secret.mp4") / "secret.mp4"  # exists, next to the archive
    source = touch(tmp_path / "src", "videos/A0.mp4", "videos/B0.mp4", "other/C0.mp4")
    (source / listing).parent.mkdir(parents=True, exist_ok=True)
    (source / listing).write_text(rows.replace("SECRET", str(secret)))
    if listing.startswith("ucf"):
        (source / "ucfTrainTestlist/classInd.txt").write_text("1 A\n2 B\n")
        (source / "ucfTrainTestlist/testlist01.txt").write_text("videos/B0.mp4\n")
    archive = tmp_path / "clips.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=".")
    data = archive
    if listing == "list.csv":
        load_dataset(archive, LayoutOptions(split_ratios=(0.4, 0.3, 0.3)))  # class folders: extracts it
        data = tmp_path / "clips.tar.gz.extracted" / listing
    for allow in (False, True):  # the flag is for the user's own files, not for what an archive lists
        with pytest.raises(DatasetError) as err:
            load_dataset(data, LayoutOptions(allow_outside_paths=allow))
        line = 3 if listing.endswith(".csv") else 2  # a CSV's header is its line 1
        assert_one_line(err, f"{Path(listing).name} line {line}", "outside", "clips.tar.gz")


def test_hub_archive_is_downloaded_then_read(tmp_path, monkeypatch):
    import huggingface_hub

    archive, calls = make_archive(tmp_path), []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename, kwargs))
        return str(archive)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    dataset = load_dataset("hf://datasets/someone/clips@v1/data/clips.tar.gz")
    assert calls == [("someone/clips", "data/clips.tar.gz", {"repo_type": "dataset", "revision": "v1"})]
    assert dataset.labels.names == ["A", "B"]


def test_hub_errors_are_one_line(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache and\noutgoing traffic is off.")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DatasetError) as err:
        load_dataset("hf://datasets/sayakpaul/ucf101-subset/UCF101_subset.tar.gz")
    assert_one_line(err, "cannot download UCF101_subset.tar.gz from dataset sayakpaul/ucf101-subset", "HF_HUB_OFFLINE")
    for url in ("hf://datasets/sayakpaul/ucf101-subset", "hf://models/a/b/c.tar.gz", "hf://datasets/a/b/c.csv"):
        with pytest.raises(DatasetError, match="expected hf://datasets/<owner>/<repo>/<archive>"):
            load_dataset(url)


# --- the commands -----------------------------------------------------------------------------------------------


def test_train_and_evaluate_take_layout_flags(tmp_path, motion_data, micro_config, capsys):
    from vidcls.cli import main

    # The motion data's three splits merged into one folder of class folders: 8 classes x 3 groups x 2 clips.
    flat = tmp_path / "flat"
    for video in motion_data.glob("*/*/*.avi"):
        (flat / video.parent.name).mkdir(parents=True, exist_ok=True)
        (flat / video.parent.name / video.name).symlink_to(video)
    layout = ["--group_pattern", r"^v_(\w+_g\d+)_c", "--split_seed", "4", "--fold", "1"]
    output_dir = tmp_path / "model"
    code = main(
        ["train", "--data_dir", str(flat), "--split", "0.34,0.33,0.33", *layout,
         "--config_name", str(micro_config), "--output_dir", str(output_dir), "--sample_rate", "2",
         "--num_train_epochs", "1", "--dataloader_num_workers", "0", "--dataloader_persistent_workers", "false"]
    )  # fmt: skip
    assert code == 0
    args = ["--model_dir", str(output_dir), "--data_dir", str(flat), "--num_workers", "0", *layout]
    assert main(["evaluate", *args, "--split_ratios", "0.34,0.33,0.33"]) == 0
    report = json.loads((output_dir / "eval_test.json").read_text())
    expected = load_dataset(flat, LayoutOptions((0.34, 0.33, 0.33), r"^v_(\w+_g\d+)_c", 1, 4)).splits["test"]
    assert report["num_videos"] == len(expected) > 0
    capsys.readouterr()
    assert main(["evaluate", *args, "--split_ratios", "0.5,0.5"]) == 2
    assert "--split_ratios" in capsys.readouterr().err


def test_train_leaves_a_same_named_user_folder_alone(tmp_path, motion_data, micro_config):
    from vidcls.cli import main

    mine = tmp_path / "motion" / "train" / "notes.txt"  # beside X.tar.gz, named like the archive's member
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the user's own notes")
    archive = tmp_path / "motion.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(motion_data, arcname="motion")
        info = tarfile.TarInfo("motion/train/notes.txt")
        tar.addfile(info)  # empty: would truncate the user's file if extracted over it
    code = main(
        ["train", "--data_dir", str(archive), "--config_name", str(micro_config), "--output_dir", str(tmp_path / "m"),
         "--sample_rate", "2", "--max_steps", "1", "--dataloader_num_workers", "0",
         "--dataloader_persistent_workers", "false"]
    )  # fmt: skip
    assert code == 0
    assert mine.read_bytes() == b"the user's own notes" and sorted(mine.parent.iterdir()) == [mine]
    assert (tmp_path / "motion.tar.gz.extracted/motion/train/notes.txt").read_bytes() == b""


def test_train_honours_the_archive_limits(tmp_path, motion_data, micro_config, capsys):
    from vidcls.cli import main

    archive = tmp_path / "motion.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(motion_data, arcname="motion")
    code = main(
        ["train", "--data_dir", str(archive), "--config_name", str(micro_config), "--output_dir", str(tmp_path / "m"),
         "--max_archive_members", "3"]
    )  # fmt: skip
    assert code == 2 and "--max_archive_members" in capsys.readouterr().err
    assert not (tmp_path / "motion.tar.gz.extracted").exists()


def test_train_arguments_carry_the_archive_and_manifest_flags(tmp_path):
    from transformers import HfArgumentParser

    from vidcls.engine.arguments import DataArguments

    flags = ["--data_dir", "d", "--max_extract_gb", "0.5", "--max_archive_members", "9", "--allow_outside_paths"]
    (data_args,) = HfArgumentParser(DataArguments).parse_args_into_dataclasses(flags)
    assert LayoutOptions.from_args(data_args) == LayoutOptions(
        max_extract_gb=0.5, max_archive_members=9, allow_outside_paths=True
    )
    (defaults,) = HfArgumentParser(DataArguments).parse_args_into_dataclasses(["--data_dir", "d"])
    assert LayoutOptions.from_args(defaults) == LayoutOptions()
