import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vidcls.data.decode import probe, read_frames, stream_frames
from vidcls.errors import DecodeError

pytestmark = pytest.mark.usefixtures("shared_videos")


def test_every_real_video_decodes(real_video):
    info = probe(real_video)
    assert info.num_frames > 0 and info.fps > 0
    indices = np.arange(16) * 4 + max(0, info.num_frames - 64)
    frames = read_frames(real_video, indices, info)
    assert frames.dtype == np.uint8
    assert frames.shape == (16, info.height, info.width, 3)
    assert frames.max() > 0  # pictures, not black padding


def test_rotated_videos_come_out_upright(real_dir):
    stored = read_frames(real_dir / "video_0.mov", [0])
    assert stored.shape[1:3] == (320, 568)
    assert read_frames(real_dir / "video_90.mov", [0]).shape[1:3] == (568, 320)  # portrait once turned
    assert read_frames(real_dir / "video_180.mov", [0]).shape[1:3] == (320, 568)
    assert probe(real_dir / "video_90.mov").rotation == 270


def test_container_without_frame_count_is_estimated(real_dir):
    info = probe(real_dir / "flipping_a_pancake.mkv")  # declares 0 frames
    assert 300 <= info.num_frames <= 320


def test_shrinks_to_short_side_keeping_aspect(real_dir):
    frames = read_frames(real_dir / "v_ApplyEyeMakeup_g01_c01.avi", [0, 10], size=60)
    assert frames.shape == (2, 60, 80, 3)


@pytest.mark.parametrize(
    ("size", "shape"),
    [(120, (120, 160)), (480, (240, 320)), ((224, 224), (224, 224)), ((300, 400), (300, 400))],
    ids=["short-side-cap", "never-enlarged", "square", "height-width"],
)
def test_scales_while_decoding(real_dir, size, shape):
    frames = read_frames(real_dir / "v_ApplyEyeMakeup_g01_c01.avi", [0, 10], size=size)  # 320x240
    assert frames.shape == (2, *shape, 3)


def test_exact_size_is_the_upright_size_of_rotated_videos(real_dir):
    path = real_dir / "video_90.mov"
    info = probe(path)
    assert info.height > info.width  # portrait once upright
    assert read_frames(path, [0], info, size=(40, 30)).shape == (1, 40, 30, 3)
    short = min(info.width, info.height)
    expected = (round(info.height * 24 / short), round(info.width * 24 / short))
    assert read_frames(path, [0], info, size=24).shape == (1, *expected, 3)


def test_picks_the_requested_frames(write_numbered_video, frame_numbers, tmp_path):
    path = write_numbered_video(tmp_path / "numbered.avi", num_frames=60)
    for indices in ([0, 1, 2, 3], [40, 44, 48, 52], [59, 10, 10, 30], [50, 58, 70]):
        got = frame_numbers(read_frames(path, indices))
        assert got == [min(i, 59) for i in indices]  # past the end: the last frame


def test_bad_videos_give_one_line_error_naming_the_file(bad_video):
    with pytest.raises(DecodeError) as caught:
        info = probe(bad_video)
        read_frames(bad_video, np.arange(16) * 4 + max(0, info.num_frames - 64), info)
    message = str(caught.value)
    assert message.startswith(str(bad_video)) and "\n" not in message


@pytest.mark.parametrize(
    ("name", "content"), [("empty.avi", b""), ("text.avi", b"this is not a video\n" * 50), ("missing.mp4", None)]
)
def test_other_bad_inputs(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DecodeError, match=name):
        probe(path)


def test_what_is_not_a_regular_file_is_refused_before_opening(fifo, write_numbered_video, tmp_path):
    for path in (fifo, tmp_path):  # opening the FIFO would wait for a writer forever
        with pytest.raises(DecodeError, match="not a regular file") as caught:
            probe(path)
        assert str(caught.value).startswith(str(path))
    with pytest.raises(DecodeError, match="FIFO"):
        read_frames(fifo, [0], probe(write_numbered_video(tmp_path / "v.avi", 10)))


@pytest.mark.parametrize(("name", "image_format"), [("png.mp4", "PNG"), ("jpeg.mp4", "JPEG"), ("one.gif", "GIF")])
def test_a_still_image_is_not_a_video_whatever_its_name(write_still, tmp_path, name, image_format):
    path = write_still(tmp_path / name, image_format)
    with pytest.raises(DecodeError, match=r"is a still image \(.*\), not a video"):
        probe(path)


def test_an_animated_gif_is_a_video(tmp_path):
    from PIL import Image

    frames = [Image.new("RGB", (32, 24), (40 * i, 0, 0)) for i in range(5)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    assert probe(tmp_path / "moving.gif").num_frames == 5


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("aac", "audio only"),
        ("aac-with-cover-art", "audio only, with cover art"),
        ("latin1-tagged-wav", "audio only"),  # its Latin-1 tag once failed as "'utf-8' codec can't decode"
    ],
    ids=["aac", "aac-with-cover-art", "latin1-tagged-wav"],
)
def test_audio_only_says_no_video_stream(write_audio_only, write_latin1_wav, tmp_path, kind, cause):
    writer = {
        "aac": write_audio_only,
        "aac-with-cover-art": lambda path: write_audio_only(path, cover_art=True),
        "latin1-tagged-wav": write_latin1_wav,
    }[kind]
    path = writer(tmp_path / "sound.mp4")
    with pytest.raises(DecodeError) as caught:
        probe(path)
    assert (
        str(caught.value) == f"{path}: no video stream ({cause}{', or not a video' if cause == 'audio only' else ''})"
    )


def test_threads_decode_at_once(real_dir, tmp_path):
    """The server decodes uploads in threads: FFmpeg scalers must not be shared (sharing one crashed Python)."""
    script = tmp_path / "threads.py"
    script.write_text(
        textwrap.dedent(f"""
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        from vidcls.data.decode import read_frames
        path = {str(real_dir / "v_ApplyEyeMakeup_g01_c01.avi")!r}
        expected = read_frames(path, range(0, 160, 4), size=(112, 112))
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: read_frames(path, range(0, 160, 4), size=(112, 112)), range(16)))
        assert all(np.array_equal(r, expected) for r in results)
        """)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_streaming_a_file_cut_short_fails_like_reading_it(shared_videos, tmp_path):
    real = (shared_videos / "real" / "v_ApplyEyeMakeup_g01_c01.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(real[: len(real) * 3 // 10])  # opens, declares 164 frames, ends about a third in
    info = probe(cut)
    with pytest.raises(DecodeError, match="file truncated"):
        list(stream_frames(cut, np.arange(info.num_frames), info, size=32))  # not the last frame, repeated
    with pytest.raises(DecodeError, match="file truncated"):
        read_frames(cut, np.arange(info.num_frames), info, size=32)
    assert len(list(stream_frames(cut, np.arange(0, 30, 3), info, size=32))) == 10  # the part before the cut
