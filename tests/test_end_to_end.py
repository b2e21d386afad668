"""The guide's whole path on generated videos: train -> evaluate -> predict, then load in transformers."""

import csv
import json
import shutil

import pytest
import torch
from transformers import AutoModelForVideoClassification

from vidcls.cli import main
from vidcls.engine.predict import Predictor


@pytest.fixture(scope="module")
def trained(tmp_path_factory, motion_data, micro_config):
    output_dir = tmp_path_factory.mktemp("run") / "model"
    code = main(
        [
            "train",
            "--data_dir", str(motion_data),
            "--config_name", str(micro_config),
            "--output_dir", str(output_dir),
            "--sample_rate", "2",
            "--hflip", "false",
            "--num_train_epochs", "2",
            "--learning_rate", "1e-3",
            "--dataloader_num_workers", "0",
            "--dataloader_persistent_workers", "false",
        ]
    )  # fmt: skip
    assert code == 0
    return output_dir


def test_output_folder_holds_model_processor_and_clip_settings(trained):
    for name in ("config.json", "model.safetensors", "video_preprocessor_config.json", "vidcls.json"):
        assert (trained / name).is_file(), name
    assert (trained / "training_curves.png").read_bytes().startswith(b"\x89PNG")
    card = (trained / "README.md").read_text()
    assert "pipeline_tag: video-classification" in card and "DriftNorthWest" in card and "| accuracy |" in card
    clip = json.loads((trained / "vidcls.json").read_text())  # the model's input contract, nothing else
    assert set(clip) == {"num_frames", "sample_rate", "image_size", "mean", "std"}
    assert clip["num_frames"] == 4 and clip["sample_rate"] == 2
    assert json.loads((trained / "run.json").read_text())["clip.hflip"] is False  # how it was trained
    model = AutoModelForVideoClassification.from_pretrained(trained)
    assert model.config.label2id["DriftEast"] == 0 and len(model.config.id2label) == 8


def test_evaluate_reports_per_video_and_per_clip(trained, motion_data, capsys):
    assert main(["evaluate", "--model_dir", str(trained), "--data_dir", str(motion_data), "--num_workers", "0"]) == 0
    assert "per video: top-1" in capsys.readouterr().out
    report = json.loads((trained / "eval_test.json").read_text())
    assert report["num_videos"] == 16  # 8 classes x 1 group x 2 clips
    assert report["num_clips"] == 16 * 4  # eval_clips=4 per video
    for key in ("accuracy", "top5_accuracy", "clip_accuracy", "clip_top5_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    assert report["top5_accuracy"] >= report["accuracy"]
    assert report["skipped_videos"] == []


def test_predict_prints_pipeline_format(trained, motion_data, capsys):
    videos = sorted((motion_data / "test").rglob("*.avi"))[:2]
    assert main(["predict", "--model_dir", str(trained), "--top_k", "3", *map(str, videos)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["video"] for line in lines] == [str(v) for v in videos]
    for line in lines:
        preds = line["predictions"]
        assert len(preds) == 3 and set(preds[0]) == {"label", "score"}
        assert preds[0]["score"] >= preds[1]["score"] >= preds[2]["score"]


def test_predict_reports_bad_files_and_goes_on(trained, motion_data, tmp_path, capsys):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video")
    good = sorted((motion_data / "test").rglob("*.avi"))[0]
    assert main(["predict", "--model_dir", str(trained), str(bad), str(good)]) == 1
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "broken.avi" in first["error"] and "predictions" in second


def test_predictor_on_frames_in_memory_matches_file(trained, motion_data):
    from vidcls.data.decode import read_frames

    predictor = Predictor.from_pretrained(trained)
    video = sorted((motion_data / "test").rglob("*.avi"))[0]
    size = predictor.spec.image_size
    frames = read_frames(video, range(25), size=(size, size))  # the whole 1 s video, decoded as predict does
    in_memory = predictor.scores(predictor.clips_from_frames(frames))
    from_file = predictor.scores(predictor.clips_from_file(video))
    assert torch.allclose(in_memory, from_file, atol=1e-6)
    assert predictor.predict_frames(frames, top_k=1)[0]["label"] == predictor.predict(video, top_k=1)[0]["label"]


@pytest.mark.parametrize("name", ["h265_video.mp4", "video_90.mov", "mmaction2_test.mp4"])
def test_predict_on_real_videos(trained, real_dir, name):
    scores = Predictor.from_pretrained(trained).scores(
        Predictor.from_pretrained(trained).clips_from_file(real_dir / name)
    )
    assert scores.shape == (8,) and torch.isclose(scores.sum(), torch.tensor(1.0))


@pytest.mark.usefixtures("torchcodec_loads")
def test_output_folder_works_in_transformers_pipeline(trained, motion_data):
    from transformers import pipeline

    classifier = pipeline("video-classification", model=str(trained))
    video = sorted((motion_data / "test").rglob("*.avi"))[0]
    result = classifier(str(video), top_k=3)
    assert len(result) == 3 and result[0]["label"] in classifier.model.config.label2id


def test_cli_errors_are_one_line(tmp_path, capsys, micro_config):
    code = main(
        [
            "train",
            "--data_dir",
            str(tmp_path / "nowhere"),
            "--config_name",
            str(micro_config),
            "--output_dir",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "nowhere does not exist" in err
    assert main(["evaluate", "--model_dir", str(tmp_path), "--data_dir", str(tmp_path)]) == 2
    assert "vidcls.json" in capsys.readouterr().err
    assert main(["train", "--data_dir", str(tmp_path), "--no_such_flag", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown flag --no_such_flag" in err and len(err.splitlines()) == 1
    assert main(["frobnicate"]) == 2
    capsys.readouterr()
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in ("train", "evaluate", "predict", "check", "cache", "show", "demo"))


def test_predict_and_evaluate_real_videos(trained, real_dir, real_videos, tmp_path):
    """Every real clip (codecs, rotation, 10-bit, fewer frames than a clip) is predicted and scored."""
    out = tmp_path / "preds.csv"
    folder = str(real_dir)
    assert main(["predict", "--model_dir", str(trained), folder, "--output", str(out), "--num_workers", "0"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {row["video"] for row in rows} == {str(path) for path in real_videos}
    assert not any(row["error"] for row in rows)

    data = tmp_path / "real"
    for i, path in enumerate(real_videos):  # any two of the model's classes will do
        target = data / "test" / ("DriftEast" if i % 2 else "DriftWest") / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    report_file = tmp_path / "real.json"
    args = [
        "--model_dir",
        str(trained),
        "--data_dir",
        str(data),
        "--num_workers",
        "0",
        "--output",
        str(report_file),
    ]
    assert main(["evaluate", *args]) == 0
    report = json.loads(report_file.read_text())
    assert report["num_videos"] == len(real_videos) and report["skipped_videos"] == []
