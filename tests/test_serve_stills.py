"""vidcls serve answers 415 for what decode.probe refuses: a picture under a video's name, or sound alone."""

import pytest
import torch
from fastapi.testclient import TestClient

from vidcls.engine.predict import Predictor
from vidcls.models.factory import create_model, resolve_clip_spec
from vidcls.serve.app import create_app
from vidcls.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def predictor(micro_config):
    torch.manual_seed(0)
    model = create_model(None, str(micro_config), {"left": 0, "right": 1})
    return Predictor(model, resolve_clip_spec(model, sample_rate=2), device="cpu")


@pytest.fixture
def write_upload(write_still, write_audio_only, write_latin1_wav, write_numbered_video):
    """``write_upload(kind, path)``: a still, a sound or a video of that kind."""
    writers = {
        "png": lambda path: write_still(path, "PNG"),
        "jpeg": lambda path: write_still(path, "JPEG"),
        "aac": write_audio_only,
        "aac-with-cover-art": lambda path: write_audio_only(path, cover_art=True),
        "latin1-tagged-wav": write_latin1_wav,
        "video": lambda path: write_numbered_video(path, 20),
    }
    return lambda kind, path: writers[kind](path)


@pytest.mark.parametrize(
    ("kind", "status", "cause"),
    [
        ("png", 415, "is a still image (png read by png_pipe), not a video"),
        ("jpeg", 415, "is a still image (mjpeg read by jpeg_pipe), not a video"),
        ("aac", 415, "no video stream (audio only"),
        ("aac-with-cover-art", 415, "no video stream (audio only, with cover art)"),
        ("latin1-tagged-wav", 415, "no video stream (audio only"),
        ("video", 200, None),  # the same request with a video
    ],
    ids=["png", "jpeg", "aac", "aac-with-cover-art", "latin1-tagged-wav", "video"],
)
def test_stills_and_sound_are_unsupported_media(predictor, write_upload, tmp_path, kind, status, cause):
    path = write_upload(kind, tmp_path / "upload.mp4")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    with TestClient(create_app(predictor, ServeSettings(tmp_dir=str(uploads)))) as client:
        with open(path, "rb") as file:
            response = client.post("/predict", files={"file": ("clip.mp4", file)})
    assert response.status_code == status, response.text
    if cause:
        assert response.json()["detail"].startswith(f"clip.mp4: {cause}")
    assert not any(uploads.iterdir())
