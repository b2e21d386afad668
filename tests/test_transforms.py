import numpy as np
import pytest
import torch

from vidcls.config import Augmentation, ClipSpec
from vidcls.data.transforms import RandomScaleCrop, build_transform, decode_size, normalize, to_video_tensor


@pytest.fixture
def frames():
    return np.random.default_rng(0).integers(0, 256, (16, 240, 320, 3), dtype=np.uint8)


@pytest.mark.parametrize("train", [True, False])
def test_output_is_uint8_at_model_size(frames, train):
    spec = ClipSpec(image_size=224)
    clip = build_transform(spec, train=train)(to_video_tensor(frames))
    assert clip.shape == (16, 3, 224, 224)
    assert clip.dtype == torch.uint8


def test_decode_sizes_follow_the_guide():
    spec = ClipSpec(image_size=224)
    assert decode_size(spec, train=True) == 320  # the largest short side of the guide's 256-320
    assert decode_size(ClipSpec(image_size=112), train=True) == 160
    assert decode_size(spec, train=False) == (224, 224)  # the guide's squashing Resize((224, 224))
    assert decode_size(spec, train=False, num_crops=3) == 224  # short side; the crops slide along the long one
    transform = RandomScaleCrop(spec)
    assert {transform.draw_short_side() for _ in range(500)} == set(range(256, 321))


def test_frames_at_the_drawn_short_side_are_cropped_not_resampled():
    # Each pixel says where it is: channel 0 its row, channels 1 and 2 its column (low and high byte).
    rows, cols = torch.meshgrid(torch.arange(256), torch.arange(341), indexing="ij")
    frames = torch.stack([rows, cols % 256, cols // 256]).to(torch.uint8).expand(2, 3, 256, 341)
    transform = RandomScaleCrop(ClipSpec(image_size=224), Augmentation(hflip=False))
    for _ in range(10):
        clip = transform(frames, short_side=256)
        top, left = int(clip[0, 0, 0, 0]), int(clip[0, 1, 0, 0]) + 256 * int(clip[0, 2, 0, 0])
        assert torch.equal(clip, frames[..., top : top + 224, left : left + 224])  # an exact window


def test_larger_frames_keep_the_field_of_view_of_the_drawn_scale():
    # Vertical stripes 1 px wide at 320 px short side; at a drawn short side of 256 the crop covers
    # 224 * 320 / 256 = 280 source pixels, so a 280-px ramp comes out spanning (nearly) the full 0..255.
    ramp = torch.arange(427, dtype=torch.float32).clamp(max=279) * 255 / 279
    frames = ramp.round().to(torch.uint8).expand(1, 3, 320, 427).clone()
    transform = RandomScaleCrop(ClipSpec(image_size=224), Augmentation(hflip=False))
    torch.manual_seed(0)
    widths = []
    for _ in range(20):
        clip = transform(frames, short_side=256)
        assert clip.shape == (1, 3, 224, 224)
        widths.append(int(clip[0, 0, 0, -1]) - int(clip[0, 0, 0, 0]))
    # a crop of 224 px without the scale would span at most 224 / 279 of the ramp (~205 levels)
    assert max(widths) > 230


def test_flip_can_be_turned_off():
    # A clip whose left half is dark: with hflip off, it stays on the left after every augmentation.
    frames = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    frames[:, :, 32:] = 255
    transform = build_transform(ClipSpec(image_size=32), train=True, augmentation=Augmentation(hflip=False))
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


def test_batches_keep_the_decoder_layout_and_normalise_to_the_same_values():
    from vidcls.engine.batching import ClipCollator

    frames = np.random.default_rng(2).integers(0, 256, (3, 4, 40, 50, 3), dtype=np.uint8)  # 3 clips (T, H, W, C)
    clips = [to_video_tensor(f).as_subclass(torch.Tensor) for f in frames]  # (T, C, H, W) views of them
    clips[1] = clips[1].contiguous()  # a clip in the other layout is reordered while stacking
    batch = ClipCollator("pixel_values")([{"video": c, "label": 0, "video_index": i} for i, c in enumerate(clips)])
    pixels = batch["pixel_values"]
    assert pixels.shape == (3, 4, 3, 40, 50) and torch.equal(pixels, torch.stack(clips))
    assert pixels.movedim(-3, -1).is_contiguous()  # stacked as decoded: no reordering copy in the workers
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    out = normalize(pixels, mean, std)
    assert out.is_contiguous() and torch.allclose(out, normalize(pixels.contiguous(), mean, std))


def test_the_device_path_of_normalize_gives_the_cpu_path_results():
    from vidcls.data.transforms import normalize_on_cpu, normalize_with_torch

    clips = torch.randint(0, 256, (2, 4, 8, 8, 3), dtype=torch.uint8).movedim(-1, -3)  # channels-last, as batched
    scale, shift = torch.tensor([0.01, 0.02, 0.03]), torch.tensor([-1.0, 0.5, 2.0])
    assert torch.equal(normalize_with_torch(clips, scale, shift), normalize_on_cpu(clips, scale, shift))
