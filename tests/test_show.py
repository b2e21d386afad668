"""vidcls show: a GIF of a clip exactly as the model sees it."""

import numpy as np
from PIL import Image, ImageSequence

from vidcls.cli import main
from vidcls.engine.predict import Predictor


def test_gif_shows_the_model_input(save_micro_model, write_numbered_video, tmp_path, capsys):
    model_dir = save_micro_model(tmp_path / "model")
    video = write_numbered_video(tmp_path / "numbered.avi", num_frames=100, size=(64, 64))
    gif = tmp_path / "out" / "clip.gif"
    assert (
        main(["show", str(video), "--model_dir", str(model_dir), "--gif", str(gif), "--clip", "2", "--scale", "1"]) == 0
    )
    assert "clip 2 of 4, 4 frames of 16x16" in capsys.readouterr().out

    with Image.open(gif) as image:
        frames = np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)])
        assert image.info["duration"] == 80  # every 2nd frame of a 25 fps video: played back in real time
    assert frames.shape == (4, 16, 16, 3)
    clips = (
        Predictor.from_pretrained(model_dir).clips_from_file(video).permute(0, 1, 3, 4, 2).numpy()
    )  # (N, T, H, W, C)
    assert np.abs(frames.astype(int) - clips[2]).max() <= 8  # GIF palettes quantise colours a little
    assert np.abs(frames.astype(int) - clips[1]).max() > 8  # and it is the third clip, not another


def test_clip_out_of_range_names_the_valid_ones(save_micro_model, write_numbered_video, tmp_path, capsys):
    model_dir = save_micro_model(tmp_path / "model")
    video = write_numbered_video(tmp_path / "numbered.avi", num_frames=20)
    assert (
        main(["show", str(video), "--model_dir", str(model_dir), "--gif", str(tmp_path / "x.gif"), "--clip", "4"]) == 2
    )
    assert "0 to 3" in capsys.readouterr().err


def test_without_gif_writes_a_readable_gif_here(save_micro_model, write_numbered_video, tmp_path, capsys, monkeypatch):
    model_dir = save_micro_model(tmp_path / "model")
    (tmp_path / "videos").mkdir()
    video = write_numbered_video(tmp_path / "videos" / "numbered.avi", num_frames=60, size=(64, 64))
    monkeypatch.chdir(tmp_path)
    assert main(["show", str(video), "--model_dir", str(model_dir)]) == 0
    assert "shown 14x larger" in capsys.readouterr().out  # 16 px clips -> 224 px, the size people can read
    with Image.open(tmp_path / "numbered.clip0.gif") as image:
        assert image.size == (224, 224)
