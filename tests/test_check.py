"""vidcls check: undecodable files, leakage and copies across splits, warnings, the JSON report, exit codes."""

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from vidcls.cli import main
from vidcls.cli.check import discover_splits
from vidcls.config import ClipSpec
from vidcls.data.discovery import LabelMaps, VideoRecord, find_duplicate_files, group_of
from vidcls.data.validate import validate_dataset

SPEC = ClipSpec(num_frames=4, sample_rate=2)  # span 8: every test video is long enough
SPEC_FLAGS = ["--num_frames", "4", "--sample_rate", "2", "--clips", "2"]


@pytest.fixture(scope="session")
def make_videos(write_numbered_video):
    """``make_videos(root, layout)``, layout: {"train/A": {"v_A_g01_c01.avi": (frames, fps)}}. Videos with equal
    frame counts are identical files."""

    def make(root: Path, layout: dict[str, dict[str, tuple[int, int]]]) -> Path:
        for folder, videos in layout.items():
            (root / folder).mkdir(parents=True, exist_ok=True)
            for name, (frames, fps) in videos.items():
                write_numbered_video(root / folder / name, frames, fps=fps, size=(32, 24))
        return root

    return make


def errors_naming(report, path: Path) -> list[str]:
    return [error for error in report.errors if str(path) in error]


def test_clean_dataset_passes_strict(motion_data, tmp_path, capsys):
    report_file = tmp_path / "report" / "check.json"
    args = ["check", str(motion_data), *SPEC_FLAGS, "--strict", "--num_workers", "2", "--json_report", str(report_file)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "OK: 48 videos, 0 errors, 0 warnings (--strict)" in out
    assert "ffmpeg" in out and "torch" in out  # the environment block
    report = json.loads(report_file.read_text())
    assert report["passed"] and report["ok"] and not report["errors"] and not report["warnings"]
    assert set(report["counts"]) == {"train", "val", "test"}
    assert all(n == 2 for per_class in report["counts"].values() for n in per_class.values())
    assert len({f["digest"] for f in report["files"]}) == 48
    assert {(f["num_frames"], f["fps"], f["error"]) for f in report["files"]} == {(25, 25.0, None)}


def test_each_bad_file_is_an_error_naming_it(make_videos, real_dir, bad_videos, tmp_path):
    assert bad_videos, "the shared bad videos are missing"
    good = make_videos(tmp_path, {"A": {"v_A_g01_c01.avi": (20, 25), "v_A_g02_c01.avi": (21, 25)}})
    bad_dir = tmp_path / "B"
    bad_dir.mkdir()
    for video in bad_videos:
        shutil.copy(video, bad_dir)
    (bad_dir / "empty.mp4").touch()
    (bad_dir / "notes.avi").write_text("not a video, only named like one\n")
    real = (real_dir / "mmaction2_test.mp4").read_bytes()
    (bad_dir / "truncated.mp4").write_bytes(real[: len(real) * 3 // 10])
    bad = sorted(bad_dir.iterdir())
    records = [VideoRecord(p, 0, group_of(p)) for p in sorted(good.glob("A/*"))] + [
        VideoRecord(p, 1, group_of(p)) for p in bad
    ]

    report = validate_dataset({"train": records}, LabelMaps.from_names(["A", "B"]), SPEC, progress=False)

    assert not report.ok
    assert all(len(errors_naming(report, p)) == 1 for p in bad), report.errors
    assert len(report.errors) == len(bad)
    assert "empty file" in errors_naming(report, bad_dir / "empty.mp4")[0]
    assert "no video stream" in errors_naming(report, bad_dir / "fixture-realmedia-audio.rm")[0]
    assert "decoding failed after 28 frames" in errors_naming(report, bad_dir / "corrupted.mp4")[0]
    assert [f.error is None for f in report.files[:2]] == [True, True]


def test_group_leakage_and_copies_across_splits_are_errors(make_videos, tmp_path):
    root = make_videos(
        tmp_path,
        {
            "train/A": {"v_A_g01_c01.avi": (20, 25), "v_A_g02_c01.avi": (21, 25)},
            "train/B": {"v_B_g03_c01.avi": (22, 25)},
            "test/A": {"v_A_g01_c02.avi": (23, 25)},  # group A_g01 again
            "test/B": {"v_B_g04_c01.avi": (24, 25)},
        },
    )
    shutil.copy(root / "train/B/v_B_g03_c01.avi", root / "test/B/renamed.avi")  # same content in two splits
    shutil.copy(root / "train/A/v_A_g02_c01.avi", root / "train/A/again.avi")  # a copy within one split
    splits, labels = discover_splits(root)

    report = validate_dataset(splits, labels, SPEC, num_workers=0, progress=False)

    assert len(report.errors) == 2, report.errors
    leak, copy = report.errors
    assert "A_g01" in leak and "train, test" in leak
    assert str(root / "train/A/v_A_g01_c01.avi") in leak and str(root / "test/A/v_A_g01_c02.avi") in leak
    assert str(root / "train/B/v_B_g03_c01.avi") in copy and str(root / "test/B/renamed.avi") in copy
    [within] = [w for w in report.warnings if "duplicate" in w]
    assert str(root / "train/A/v_A_g02_c01.avi") in within and str(root / "train/A/again.avi") in within


def test_imbalance_short_videos_and_frame_rates_are_warnings(make_videos, tmp_path, capsys):
    short = {f"short{n}.avi": (n, 25) for n in range(9, 15)}  # 6 videos under the 16-frame span
    root = make_videos(
        tmp_path,
        {
            "train/A": {**short, "slow.avi": (30, 5)},
            "train/B": {"b1.avi": (40, 25), "b2.avi": (41, 25)},
            "val/A": {"a.avi": (42, 25)},
        },
    )
    splits, labels = discover_splits(root)

    report = validate_dataset(splits, labels, ClipSpec(num_frames=4, sample_rate=4), num_workers=1, progress=False)

    assert report.ok and not report.errors
    text = "\n".join(report.warnings)
    assert "train is imbalanced: A has 7 videos, B only 2" in text
    assert "6 videos are shorter than one clip (16 frames = 4 x 4)" in text and "and 1 more" in text
    assert f"{root / 'train/A/slow.avi'} (5 fps)" in text  # outside 10-120 fps
    assert "mixed frame rates: 9 at 25 fps, 1 at 5 fps" in text
    assert "val has no videos of: B" in text
    assert len(report.warnings) == 5

    flags = [str(root), "--num_frames", "4", "--sample_rate", "4", "--num_workers", "0"]
    assert main(["check", *flags]) == 0
    assert main(["check", *flags, "--strict"]) == 1
    assert "FAILED: 10 videos, 0 errors, 5 warnings (--strict)" in capsys.readouterr().out


def test_json_report_and_exit_codes(make_videos, shared_videos, tmp_path, monkeypatch):
    root = make_videos(tmp_path / "data", {"train/A": {"a1.avi": (20, 25), "a2.avi": (21, 25)}})
    shutil.copy(shared_videos / "bad" / "corrupted.mp4", root / "train/A")
    monkeypatch.chdir(tmp_path)

    assert main(["check", str(root), *SPEC_FLAGS, "--num_workers", "1"]) == 1
    assert not list(tmp_path.glob("*.json"))  # nothing written unless asked

    report_file = tmp_path / "check.json"
    assert main(["check", str(root), *SPEC_FLAGS, "--num_workers", "0", "--output", str(report_file)]) == 1
    report = json.loads(report_file.read_text())
    assert not report["passed"] and not report["ok"]
    assert report["errors"] == [
        f"{root / 'train/A/corrupted.mp4'}: decoding failed after 28 frames (Invalid data found when processing input)"
    ]
    assert report["counts"] == {"train": {"A": 3}}
    assert report["clip_spec"] == {"num_frames": 4, "sample_rate": 2, "eval_clips": 2, "span": 8}
    files = {Path(f["path"]).name: f for f in report["files"]}
    assert files["corrupted.mp4"]["error"] and files["corrupted.mp4"]["num_frames"] == 50
    assert files["a1.avi"]["error"] is None and files["a1.avi"]["num_frames"] == 20 and files["a1.avi"]["digest"]
    assert {"python", "torch", "torchvision", "transformers", "av", "ffmpeg"} <= set(report["environment"])

    assert main(["check", str(tmp_path / "missing")]) == 2
    assert main(["check", str(root), "--num_frames", "0"]) == 2


def test_truncated_avi_is_an_error(real_dir, tmp_path):
    real = (real_dir / "v_ApplyEyeMakeup_g01_c01.avi").read_bytes()  # AVI opens even when cut
    cut = tmp_path / "cut.avi"
    cut.write_bytes(real[: len(real) * 3 // 10])
    report = validate_dataset({"train": [VideoRecord(cut, 0, "g")]}, LabelMaps.from_names(["A"]), SPEC, progress=False)
    assert errors_naming(report, cut)


# --- archives and manifests through the command -----------------------------------------------------------------


@pytest.fixture(scope="session")
def make_archive(make_videos):
    """``make_archive(tmp_path, archive, top="")``: a .tar.gz of a small split-folder dataset of real videos, under
    ``top/`` inside the archive."""

    def make(tmp_path: Path, archive: Path, top: str = "") -> Path:
        source = make_videos(
            tmp_path / "source",
            {"train/A": {"a1.avi": (20, 25)}, "train/B": {"b1.avi": (21, 25)}, "val/A": {"a2.avi": (22, 25)}},
        )
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(source, arcname=top or ".")
        return archive

    return make


def test_check_archive_leaves_a_same_named_user_folder_alone(make_archive, tmp_path, capsys):
    mine = tmp_path / "X" / "train" / "A" / "a1.avi"  # the same path as a member of the archive
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the user's own file")
    archive = make_archive(tmp_path, tmp_path / "X.tar.gz", top="X")
    assert main(["check", str(archive), *SPEC_FLAGS, "--num_workers", "0"]) == 0
    assert mine.read_bytes() == b"the user's own file"
    assert sorted(p.relative_to(tmp_path / "X").as_posix() for p in (tmp_path / "X").rglob("*")) == [
        "train", "train/A", "train/A/a1.avi"
    ]  # fmt: skip
    assert f"data: {archive}, extracted to {tmp_path / 'X.tar.gz.extracted' / 'X'}" in capsys.readouterr().out


def test_check_archive_named_only_a_suffix(make_archive, tmp_path, capsys):
    archive = make_archive(tmp_path, tmp_path / "arch" / ".tar.gz")
    assert main(["check", str(archive), *SPEC_FLAGS, "--num_workers", "0"]) == 0
    assert "OK: 3 videos" in capsys.readouterr().out


def test_check_archive_limits_are_one_line_errors(make_archive, tmp_path, capsys):
    archive = make_archive(tmp_path, tmp_path / "data" / "d.tar.gz")
    for flags, named in (
        (["--max_extract_gb", "0.000001"], "--max_extract_gb 1e-06"),
        (["--max_archive_members", "3"], "--max_archive_members 3"),
    ):
        assert main(["check", str(archive), *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(archive) in err and named in err, err
        assert sorted(archive.parent.iterdir()) == [archive]


def test_check_manifest_outside_paths_need_the_flag(make_videos, tmp_path, capsys):
    make_videos(tmp_path / "videos", {"A": {"a1.avi": (20, 25)}, "B": {"b1.avi": (21, 25)}})
    manifest = tmp_path / "lists" / "all.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,label,split\n../videos/A/a1.avi,A,train\n../videos/B/b1.avi,B,train\n")
    assert main(["check", str(manifest), *SPEC_FLAGS, "--num_workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{manifest} line 2" in err and "--allow_outside_paths" in err, err
    assert main(["check", str(manifest), *SPEC_FLAGS, "--num_workers", "0", "--allow_outside_paths"]) == 0


def test_links_across_splits_are_copies_and_other_segments_of_one_file_are_not(make_videos, tmp_path):
    root = make_videos(tmp_path, {"train/A": {"a.avi": (30, 25), "b.avi": (31, 25)}, "val/A": {"c.avi": (32, 25)}})
    (root / "val/A/link.avi").symlink_to(root / "train/A/a.avi")
    labels = LabelMaps.from_names(["A"])
    b = root / "train/A/b.avi"
    splits = {
        "train": [VideoRecord(root / "train/A/a.avi", 0, "a"), VideoRecord(b, 0, "b1", 0.0, 0.6)],
        "val": [VideoRecord(root / "val/A/link.avi", 0, "link"), VideoRecord(root / "val/A/c.avi", 0, "c")],
        "test": [VideoRecord(b, 0, "b2", 0.6, 1.2)],  # another part of b.avi, in a group of its own
    }

    report = validate_dataset(splits, labels, SPEC, num_workers=0, progress=False)

    [copy] = report.errors
    assert copy.startswith("the same file is in more than one split") and "link.avi" in copy
    # train decides with the same rule (hashing only files of equal size).
    [[(split, record), (other_split, other)]] = find_duplicate_files(splits)
    assert (split, record.path.name, other_split, other.path.name) == ("train", "a.avi", "val", "link.avi")
    allowed = validate_dataset(splits, labels, SPEC, num_workers=0, progress=False, allow_duplicates=True)
    assert allowed.ok and copy in allowed.warnings  # train --strict --allow_duplicates


def test_a_fifo_is_an_error_not_a_hang(fifo, write_numbered_video, tmp_path):
    video = write_numbered_video(tmp_path / "a.avi", 20)
    records = [VideoRecord(video, 0, "a"), VideoRecord(fifo, 0, "fifo")]  # a manifest may list anything
    report = validate_dataset({"train": records}, LabelMaps.from_names(["A"]), SPEC, num_workers=0, progress=False)
    assert report.errors == [f"{fifo}: is a FIFO (named pipe), not a regular file; pass a video file"]
