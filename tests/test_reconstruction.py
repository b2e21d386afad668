"""vidcls show --reconstruction: the original, masked and rebuilt frames of a pretrained masked autoencoder."""

import numpy as np
import torch
from PIL import Image

from vidcls.cli import main
from vidcls.config import ClipSpec
from vidcls.engine.predict import ClipReader
from vidcls.engine.reconstruct import from_patches, to_patches


def test_patches_round_trip():
    frames = torch.arange(4 * 3 * 16 * 16, dtype=torch.float32).view(4, 3, 16, 16)
    patches = to_patches(frames, tubelet=2, patch=8)
    assert patches.shape == (2 * 2 * 2, 2 * 8 * 8, 3)
    assert torch.equal(patches[0, 0], frames[0, :, 0, 0])  # the first token starts at frame 0, top left
    assert torch.equal(from_patches(patches, frames.shape, 2, 8), frames)


def test_png_rows_are_original_masked_and_rebuilt(motion_data, micro_config, tmp_path, capsys):
    model = tmp_path / "mae"
    assert main(["pretrain", "--data_dir", str(motion_data), "--config_name", str(micro_config), "--output_dir",
                 str(model), "--num_train_epochs", "1", "--sample_rate", "2", "--mask_ratio", "0.5",
                 "--dataloader_num_workers", "0"]) == 0  # fmt: skip
    video = next((motion_data / "test").rglob("*.avi"))
    png = tmp_path / "out" / "rebuilt.png"
    assert main(["show", "--reconstruction", str(model), str(video), "--output", str(png), "--scale", "1"]) == 0
    assert "50% of the tubes hidden" in capsys.readouterr().out

    grid = np.asarray(Image.open(png))
    assert grid.shape == (3 * 16 + 2 * 2, 4 * 16 + 3 * 2, 3)  # 3 rows of 4 frames of 16 px, 2 px apart
    rows = [np.stack([grid[r * 18 : r * 18 + 16, c * 18 : c * 18 + 16] for c in range(4)]) for r in range(3)]
    clip = ClipReader(ClipSpec.load(model)).from_file(video)[0].permute(0, 2, 3, 1).numpy()  # (T, H, W, C)
    assert np.array_equal(rows[0], clip)
    grey = (rows[1] == 128).all(axis=-1)  # (T, H, W): the hidden tubes
    assert grey.sum() == 4 * 16 * 16 // 2 and (grey == grey[:1]).all()  # half of each frame, the same place
    assert np.array_equal(rows[2][~grey], clip[~grey])  # visible patches are kept as they were
    assert not np.array_equal(rows[2][grey], clip[grey])  # hidden ones are the model's


def test_show_needs_a_model(tmp_path, capsys):
    assert main(["show", str(tmp_path / "v.avi")]) == 2
    assert "--reconstruction" in capsys.readouterr().err
