"""--engine ray on a real local Ray (2 CPUs, one per session): the same results as one process, resumable output,
every video exactly once when a predictor actor is killed, and one-line errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import psutil
import pytest
import torch
from transformers import VideoMAEConfig

import vidcls
from vidcls.cli import main
from vidcls.engine.predict import Predictor
from vidcls.engine.predict_batch import predict_records
from vidcls.engine.ray_engine import RayEngine, score_videos_ray
from vidcls.errors import ConfigError
from vidcls.models.factory import create_model, resolve_clip_spec, save_trained


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, save_micro_model):
    return save_micro_model(tmp_path_factory.mktemp("model"))  # labels left, right and up


@pytest.fixture(scope="module")
def videos(tmp_path_factory, write_numbered_video):
    """Seven short videos of different lengths and sizes, and a broken file among them."""
    root = tmp_path_factory.mktemp("videos")
    paths = [str(write_numbered_video(root / f"v{i}.avi", 9 + 17 * i, size=(64 + 16 * (i % 2), 48))) for i in range(7)]
    (root / "broken.avi").write_bytes(b"not a video")
    return [*paths[:3], str(root / "broken.avi"), *paths[3:]]


def by_video(records):
    return {record["video"]: record for record in records}


def assert_same_predictions(got: dict, expected: dict):
    """Same labels in the same order, scores within 1e-5; the same error records."""
    assert got.keys() == expected.keys()
    for video, record in expected.items():
        if "error" in record:
            assert got[video]["error"] == record["error"]
            continue
        labels, scores = zip(*[(p["label"], p["score"]) for p in got[video]["predictions"]], strict=True)
        assert list(labels) == [p["label"] for p in record["predictions"]]
        assert np.allclose(scores, [p["score"] for p in record["predictions"]], atol=1e-5, rtol=0)


def test_predict_on_ray_equals_one_process(ray_local, model_dir, videos, tmp_path):
    expected = by_video(predict_records(Predictor.from_pretrained(model_dir, device="cpu"), videos, top_k=3))
    output = tmp_path / "preds.jsonl"
    argv = ["predict", "--model_dir", str(model_dir), *videos, "--top_k", "3", "--batch_size", "3"]
    assert main([*argv, "--engine", "ray", "--output", str(output), "--progress", "false"]) == 1  # the broken file
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["video"] for r in records) == sorted(videos)  # each video once, in the order they finished
    assert_same_predictions(by_video(records), expected)
    assert "broken.avi" in by_video(records)[videos[3]]["error"]


def test_a_rerun_skips_what_is_written_and_redoes_what_a_crash_cut(ray_local, model_dir, videos, tmp_path):
    output = tmp_path / "preds.csv"
    # A first run stopped by a crash: one whole record (a score no model gave, to see it is kept), one cut short.
    header = "video,rank,label,score,error\r\n"
    kept = "".join(f"{videos[0]},{rank},{label},0.125,\r\n" for rank, label in ((1, "up"), (2, "left"), (3, "right")))
    output.write_text(header + kept + f"{videos[1]},1,up,0.5,\r\n{videos[1]},2,le", newline="")
    argv = ["predict", "--model_dir", str(model_dir), *videos, "--top_k", "3", "--engine", "ray"]
    assert main([*argv, "--output", str(output), "--progress", "false"]) == 1
    rows = list(csv.DictReader(output.open(newline="")))
    assert output.read_bytes().decode().startswith(header + kept)
    counts = {video: sum(row["video"] == video for row in rows) for video in videos}
    assert counts == {video: 1 if video.endswith("broken.avi") else 3 for video in videos}  # each once, whole
    written = output.read_bytes()
    assert main([*argv, "--output", str(output), "--progress", "false"]) == 0  # nothing left to do
    assert output.read_bytes() == written


@pytest.fixture(scope="module")
def slow_model_dir(tmp_path_factory):
    """A model slow enough on a CPU (about 25 ms a clip) that killing its actor leaves it work to finish."""
    config = VideoMAEConfig(
        image_size=64,
        patch_size=8,
        num_frames=8,
        tubelet_size=2,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
    )
    root = tmp_path_factory.mktemp("slow")
    config.to_json_file(root / "config.json")
    torch.manual_seed(0)
    model = create_model(None, str(root / "config.json"), {"left": 0, "right": 1, "up": 2})
    return save_trained(model, resolve_clip_spec(model, sample_rate=2), root / "model")


def ray_processes(running: str) -> list[psutil.Process]:
    """Ray's worker processes running ``running``: Ray names a worker after the task or actor it runs
    (``ray::MapBatches(decode_block)``, ``ray::MapWorker(MapBatches(ViewScorer))``), ``ray::IDLE`` between tasks."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(running in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_killed_decode_worker_and_actor_lose_no_video_and_repeat_none(
    ray_local, slow_model_dir, shared_videos, write_numbered_video, tmp_path
):
    real = str(shared_videos / "real" / "v_ApplyEyeMakeup_g01_c01.avi")  # 320x240: a task of 8 takes about a second
    paths = [real] * 16 + [str(write_numbered_video(tmp_path / f"k{i}.avi", 20 + 2 * i)) for i in range(8)]
    killed, stop = [], threading.Event()

    def kill_a_decoder():  # the first decode task seen running dies in the middle of its videos
        while not stop.wait(0.01):
            for process in ray_processes("decode_block"):
                os.kill(process.pid, signal.SIGKILL)
                killed.append(process.pid)
                return

    killer = threading.Thread(target=kill_a_decoder, daemon=True)
    killer.start()
    predictor = Predictor.from_pretrained(slow_model_dir, device="cpu")
    scored = score_videos_ray(predictor, paths, vidcls.RayEngine(str(slow_model_dir), device="cpu"), batch_size=4)
    first = next(scored)
    (actor,) = ray_processes("ViewScorer")
    os.kill(actor.pid, signal.SIGKILL)  # most of the views are still to be scored: its tasks run again elsewhere
    results = [first, *scored]
    stop.set()
    killer.join()
    assert killed, "no decode task was seen running, so none was killed"
    assert sorted(video.index for video in results) == list(range(len(paths)))
    with torch.inference_mode():
        expected = {path: predictor.logits(predictor.clips_from_file(path)).numpy() for path in set(paths)}
    for video in results:
        assert video.video == paths[video.index] and video.error is None
        np.testing.assert_allclose(video.logits, expected[video.video], atol=1e-5, rtol=0)


def test_engine_flags_are_checked_before_any_work(ray_local, model_dir, videos, capsys, monkeypatch):
    argv = ["predict", "--model_dir", str(model_dir), videos[0]]
    assert main([*argv, "--concurrency", "2"]) == 2
    assert "--concurrency and --num_gpus set Ray's predictor actors: add --engine ray" in capsys.readouterr().err
    assert main([*argv, "--engine", "ray", "--timeline"]) == 2
    assert "--timeline runs in one process" in capsys.readouterr().err
    assert main([*argv, "--engine", "ray", "--concurrency", "2"]) == 2  # 2 actors take both CPUs: none decodes
    assert "the Ray cluster has 2 CPUs" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as on a machine without the ray extra: import fails
    assert main([*argv, "--engine", "ray"]) == 2
    assert "--engine ray needs Ray: pip install 'vidcls[ray]'" in capsys.readouterr().err


def test_a_ray_address_out_of_reach_is_one_line(model_dir, videos):
    argv = ["predict", "--model_dir", str(model_dir), videos[0], "--engine", "ray", "--ray_address", "no-such-host"]
    done = subprocess.run([sys.executable, "-m", "vidcls", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "--ray_address no-such-host: cannot join a Ray cluster there" in last and "ray start --head" in last


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, shared_videos, write_numbered_video):
    """Two of the micro model's classes in train and test folders, with broken files, a file cut short (it opens,
    ends at 30%) and a video shorter than one clip."""
    root = tmp_path_factory.mktemp("dataset")
    for split, count in (("train", 3), ("test", 2)):
        for label in ("left", "right"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                write_numbered_video(root / split / label / f"v_{label}_g{split}{i}_c01.avi", 20 + 7 * i, size=(32, 24))
    (root / "train" / "right" / "v_right_gbad_c01.avi").write_bytes(b"not a video")
    write_numbered_video(root / "test" / "right" / "v_right_gshort_c01.avi", 3, size=(32, 24))
    (root / "test" / "right" / "v_right_gbad_c02.avi").write_bytes(b"not a video either")
    real = (shared_videos / "real" / "v_ApplyEyeMakeup_g01_c01.avi").read_bytes()  # an AVI opens when cut
    (root / "test" / "left" / "v_left_gcut_c01.avi").write_bytes(real[: len(real) * 3 // 10])
    return root


def test_check_on_ray_reports_what_one_process_does(ray_local, small_dataset, tmp_path):
    flags = [str(small_dataset), "--num_frames", "4", "--sample_rate", "2", "--clips", "2"]
    assert main(["check", *flags, "--output", str(tmp_path / "local.json")]) == 1  # the broken file
    assert main(["check", *flags, "--engine", "ray", "--output", str(tmp_path / "ray.json")]) == 1
    local, on_ray = (json.loads((tmp_path / name).read_text()) for name in ("local.json", "ray.json"))
    assert on_ray == local
    assert any("v_right_gbad_c01.avi" in error for error in on_ray["errors"])


def test_cache_on_ray_writes_what_one_process_writes(ray_local, small_dataset, tmp_path, capsys):
    flags = ["cache", "--data_dir", str(small_dataset), "--image_size", "16"]
    assert main([*flags, "--cache_dir", str(tmp_path / "local"), "--num_workers", "0"]) == 0
    assert main([*flags, "--cache_dir", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    summaries = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[rank")]
    local, on_ray = (line.split("] ")[1].split(";")[0] for line in summaries)  # "12 added, 3 error"
    assert on_ray == local and "error" in local  # the same outcomes on both engines
    entries = {name: sorted((tmp_path / name).iterdir()) for name in ("local", "ray")}
    assert [p.name for p in entries["ray"]] == [p.name for p in entries["local"]]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(entries["local"], entries["ray"], strict=True))
    assert main([*flags, "--cache_dir", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    assert "added" not in capsys.readouterr().out  # a rerun finds them cached


def test_evaluate_on_ray_reports_what_one_process_does(ray_local, model_dir, small_dataset, tmp_path):
    model = model_dir  # labels left, right and up: the data's classes are the first two
    flags = ["evaluate", "--model_dir", str(model), "--data_dir", str(small_dataset), "--views", "2x3"]
    assert main([*flags, "--output", str(tmp_path / "local.json")]) == 0
    assert main([*flags, "--output", str(tmp_path / "ray.json"), "--engine", "ray", "--batch_size", "5"]) == 0
    local, on_ray = (json.loads((tmp_path / name).read_text()) for name in ("local.json", "ray.json"))
    assert on_ray["views"] == "2x3" and on_ray["num_clips"] == local["num_clips"] > 6 * 3
    assert on_ray["skipped_videos"] == local["skipped_videos"] and len(local["skipped_videos"]) == 1
    assert on_ray["partially_scored"] == local["partially_scored"] and len(local["partially_scored"]) == 1
    for key in ("accuracy", "clip_accuracy", "mean_class_accuracy", "per_class", "confusion_matrix", "num_videos"):
        assert on_ray[key] == local[key], key  # from the same predicted labels: identical
    rows = [list(csv.DictReader(open(tmp_path / f"{name}.predictions.csv"))) for name in ("local", "ray")]
    assert [(r["file"], r["predicted_label"]) for r in rows[1]] == [(r["file"], r["predicted_label"]) for r in rows[0]]
    assert np.allclose([float(r["score"]) for r in rows[1]], [float(r["score"]) for r in rows[0]], atol=1e-5)


def test_an_actor_that_cannot_load_the_model_is_one_line(ray_local, model_dir, videos, tmp_path):
    """As on a node that does not see the model folder: the driver's copy loads, the actors' do not."""
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    elsewhere = RayEngine(str(tmp_path / "not-here"), device="cpu")
    with pytest.raises(
        ConfigError, match=r"a predictor actor could not load --model_dir .*not-here \(.*no vidcls.json"
    ):
        list(score_videos_ray(predictor, videos, elsewhere))
