import numpy as np
import pytest
import torch

from vidcls.config import ClipSpec
from vidcls.data.transforms import build_transform, decode_short_side, normalize, to_video_tensor


@pytest.fixture
def frames():
    return np.random.default_rng(0).integers(0, 256, (16, 240, 320, 3), dtype=np.uint8)


@pytest.mark.parametrize("train", [True, False])
def test_output_is_uint8_at_model_size(frames, train):
    spec = ClipSpec(image_size=224)
    clip = build_transform(spec, train=train)(to_video_tensor(frames))
    assert clip.shape == (16, 3, 224, 224)
    assert clip.dtype == torch.uint8


def test_train_scale_follows_the_guide_ratios():
    spec = ClipSpec(image_size=224)
    assert decode_short_side(spec, train=True) == 320
    assert decode_short_side(spec, train=False) == 224
    assert decode_short_side(ClipSpec(image_size=112), train=True) == 160


def test_flip_can_be_turned_off():
    # A clip whose left half is dark: with hflip off, it stays on the left after every augmentation.
    frames = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    frames[:, :, 32:] = 255
    transform = build_transform(ClipSpec(image_size=32, hflip=False), train=True)
    for _ in range(20):
        clip = transform(to_video_tensor(frames)).float()
        assert clip[..., :8].mean() < clip[..., -8:].mean()


def test_flip_is_on_by_default():
    frames = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    frames[:, :, 32:] = 255
    transform = build_transform(ClipSpec(image_size=32), train=True)
    flipped = [transform(to_video_tensor(frames)).float()[..., :8].mean() > 128 for _ in range(40)]
    assert any(flipped) and not all(flipped)


def test_normalize_once_to_float():
    clips = torch.full((1, 2, 3, 4, 4), 255, dtype=torch.uint8)
    out = normalize(clips, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, 0, :, 0, 0], torch.tensor([1.0, 2.0, 1.0]))


def test_normalize_leaves_its_input_alone_whatever_its_layout():
    clips = torch.randint(0, 256, (2, 4, 3, 8, 8), dtype=torch.uint8)
    expected = (clips.float() / 255 - 0.5) / 0.25
    as_float = clips.float()
    assert torch.allclose(normalize(as_float, (0.5,) * 3, (0.25,) * 3), expected, atol=1e-5)
    assert torch.equal(as_float, clips.float())  # not changed in place
    # (B, C, T, H, W) permuted to (B, T, C, H, W): a non-contiguous view
    strided = clips.permute(0, 2, 1, 3, 4).contiguous().permute(0, 2, 1, 3, 4)
    assert torch.allclose(normalize(strided, (0.5,) * 3, (0.25,) * 3), expected, atol=1e-5)
