"""vidcls serve: every answer of the API, its limits, clean-up of uploads, batching, and a load test on loopback."""

import base64
import contextlib
import dataclasses
import http.client
import io
import re
import shutil
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

import vidcls.serve.uploads
from vidcls.cli import main
from vidcls.cli.serve import build_parser
from vidcls.engine.predict import Predictor
from vidcls.errors import ConfigError
from vidcls.serve.app import create_app
from vidcls.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def small_clip(real_dir):
    return real_dir / "h264_10bits.mp4"  # 34 kB, 1 s


@pytest.fixture(scope="module")
def ten_seconds(real_dir):
    return real_dir / "mmaction2_test.mp4"  # 1.3 MB, 300 frames at 30 fps


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, save_micro_model):
    return save_micro_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.from_pretrained(model_dir, device="cpu")


@pytest.fixture
def uploads(tmp_path):
    """The server's temporary folder: every test that uploads checks it is empty afterwards."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


@contextlib.contextmanager
def serving(predictor, **limits):
    """A TestClient inside the app's lifespan (the batcher thread runs), with these limits."""
    with TestClient(create_app(predictor, ServeSettings(**limits))) as client:
        yield client


def post_file(client, path, name=None, **params):
    with open(path, "rb") as file:
        return client.post("/predict", params=params, files={"file": (name or path.name, file)})


def labels_and_scores(predictions):
    return [p["label"] for p in predictions], np.array([p["score"] for p in predictions])


def assert_same_predictions(body, expected):
    labels, scores = labels_and_scores(body["predictions"])
    assert labels == [p["label"] for p in expected]
    assert np.allclose(scores, [p["score"] for p in expected], atol=1e-5)


class GatedPredictor:
    """The real predictor, but each model call is recorded and held until the test opens the gate."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.calls = []  # clips per model call
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def logits(self, clips):
        self.calls.append(len(clips))
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return self.predictor.logits(clips)


def multipart(name: str, data: bytes, boundary: str = "vidcls-test-boundary") -> tuple[bytes, str]:
    """A multipart body with one file field, built by hand to send it in pieces or half of it."""
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_the_frames_the_model_saw_and_the_time_taken_on_request(predictor, uploads, real_videos):
    clip = real_videos[0]
    with serving(predictor, tmp_dir=str(uploads)) as client:
        body = post_file(client, clip, frames="true").json()
        assert "frames" not in post_file(client, clip).json()  # only when asked: they weigh more than the answer
    first = predictor.clips_from_file(clip)[0].numpy().transpose(0, 2, 3, 1)  # (T, C, H, W) -> (T, H, W, C)
    assert len(body["frames"]) == len(first) and body["seconds"] > 0
    for url, expected in zip(body["frames"], first, strict=True):
        assert url.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
            decoded = np.asarray(image.convert("RGB")).astype(int)
        assert decoded.shape == expected.shape and np.abs(decoded - expected).mean() < 8  # JPEG's loss only


def test_predictions_match_the_predictor_on_real_clips(predictor, uploads, real_videos):
    with serving(predictor, tmp_dir=str(uploads)) as client:
        for path in real_videos:
            response = post_file(client, path, top_k=3)
            assert response.status_code == 200, (path.name, response.text)
            body = response.json()
            assert body["video"] == path.name and body["duration"] > 0
            assert_same_predictions(body, predictor.predict(path, top_k=3))
            assert "timeline" not in body
        health = client.get("/health").json()
        assert health == {"status": "ok", "uploading": 0, "working": 0, "waiting": 0, "model_calls": len(real_videos)}
    assert not any(uploads.iterdir())


def test_timeline_on_request(predictor, uploads, ten_seconds):
    expected = predictor.predict_timeline(ten_seconds, 2.0, 1.0)
    with serving(predictor, tmp_dir=str(uploads)) as client:
        response = post_file(client, ten_seconds, timeline="true", window=2, stride=1)
    assert response.status_code == 200, response.text
    timeline = response.json()["timeline"]
    assert timeline["video"] == ten_seconds.name  # not the server's temporary path
    assert (timeline["duration"], timeline["window_s"], timeline["stride_s"]) == (10.0, 2.0, 1.0)
    for field in ("segments", "windows"):
        assert [(s["label"], s["start"], s["end"]) for s in timeline[field]] == [
            (s["label"], s["start"], s["end"]) for s in expected[field]
        ]
        assert np.allclose([s["score"] for s in timeline[field]], [s["score"] for s in expected[field]], atol=1e-5)
    assert not any(uploads.iterdir())


def test_labels_health_page_and_docs(predictor):
    with serving(predictor) as client:
        assert client.get("/labels").json() == {"model": "model", "labels": ["left", "right", "up"]}
        assert client.get("/health").json()["status"] == "ok"
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for element in ('id="file"', 'id="drop"', 'id="top-label"', 'id="bars"', 'id="timeline"', 'id="error"'):
            assert element in page.text
        assert "http://" not in page.text and "https://" not in page.text  # no external assets: works offline
        schema = client.get("/openapi.json").json()
        assert {"/predict", "/labels", "/health"} <= set(schema["paths"])
        predict = schema["paths"]["/predict"]["post"]
        assert "file" in predict["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        assert {"413", "415", "422", "503", "504"} <= set(predict["responses"])
        assert {p["name"] for p in predict["parameters"]} == {"top_k", "timeline", "window", "stride", "frames"}
        assert 'href="openapi.json"' in page.text and 'id="api"' in page.text  # no Swagger UI: it needs a CDN
        assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_uploads_over_the_limit_get_413_declared_or_not(predictor, uploads, small_clip, real_dir):
    data = (real_dir / "mmaction2_demo.mp4").read_bytes()  # 620 kB
    body, content_type = multipart("demo.mp4", data)
    with serving(predictor, max_upload_mb=0.25, tmp_dir=str(uploads)) as client:
        declared = post_file(client, real_dir / "mmaction2_demo.mp4")  # Content-Length: refused before reading
        assert declared.status_code == 413
        assert declared.json()["detail"] == "upload of 0.6 MiB is over the 0.25 MiB limit (--max_upload_mb)"
        # No Content-Length (chunked): refused once the bytes read pass the limit.
        pieces = (body[i : i + 32768] for i in range(0, len(body), 32768))
        chunked = client.post("/predict", content=pieces, headers={"content-type": content_type})
        assert chunked.status_code == 413
        assert chunked.json()["detail"] == "upload is over the 0.25 MiB limit (--max_upload_mb)"
        assert post_file(client, small_clip).status_code == 200  # under the limit: served
    assert not any(uploads.iterdir())


# What each broken file gets: the status and the words naming the cause.
BAD_ANSWERS = {
    "corrupted.mp4": (422, "decoding failed after 28 frames"),  # opens, breaks midway
    "fixture-corrupt.mkv": (415, "cannot open as a video"),
    "fixture-dash.mp4": (415, "cannot open as a video"),
    "fixture-realmedia-audio.rm": (415, "no video stream"),
    "fixture.3g2": (415, "cannot open as a video"),
    "fixture.ogv": (415, "cannot open as a video"),
    "fixture.wma.asf": (415, "no video stream"),
    "empty.avi": (422, "the uploaded file is empty"),
    "text.avi": (415, "cannot open as a video"),
}


def test_bad_files_get_415_or_422_naming_the_cause(predictor, uploads, bad_videos, tmp_path):
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "text.avi").write_text("a text file renamed .avi\n" * 20)
    with serving(predictor, tmp_dir=str(uploads)) as client:
        for path in [*bad_videos, tmp_path / "empty.avi", tmp_path / "text.avi"]:
            response = post_file(client, path)
            status, cause = BAD_ANSWERS[path.name]
            detail = response.json()["detail"]
            assert (response.status_code, cause in detail) == (status, True), (path.name, detail)
            assert detail.startswith(f"{path.name}: ") and str(uploads) not in detail  # the client's name, not ours
        assert client.get("/health").json()["waiting"] == 0
    assert not any(uploads.iterdir())


def test_requests_that_are_not_one_video_upload(predictor, uploads, small_clip):
    with serving(predictor, tmp_dir=str(uploads)) as client:
        raw = client.post("/predict", content=small_clip.read_bytes(), headers={"content-type": "video/mp4"})
        assert raw.status_code == 415 and "multipart/form-data in the field 'file'" in raw.json()["detail"]
        no_file = client.post("/predict", files={"note": (None, "hello")})
        assert no_file.status_code == 422 and "no video in the form" in no_file.json()["detail"]
        with open(small_clip, "rb") as file:
            wrong_field = client.post("/predict", files={"video": ("a.mp4", file)})
        assert wrong_field.status_code == 422 and "field 'file', not 'video'" in wrong_field.json()["detail"]
        bad_top_k = post_file(client, small_clip, top_k=0)
        assert bad_top_k.status_code == 422 and bad_top_k.json()["detail"].startswith("top_k: ")
    assert not any(uploads.iterdir())


def test_videos_over_the_length_limit_get_422(predictor, uploads, ten_seconds):
    with serving(predictor, max_video_seconds=5, tmp_dir=str(uploads)) as client:
        response = post_file(client, ten_seconds)
        assert response.status_code == 422
        assert response.json()["detail"] == (
            "mmaction2_test.mp4: lasts 10.0 s, over the 5 s limit (--max_video_seconds)"
        )
        assert client.get("/health").json()["model_calls"] == 0  # refused before decoding
    assert not any(uploads.iterdir())


def test_timeouts_get_504_and_uploads_go_when_their_work_ends(predictor, uploads, small_clip, wait_until):
    """One request times out in the model, one while queued behind it; neither leaves a file behind."""
    gated = GatedPredictor(predictor)
    with serving(gated, max_concurrent=1, max_queue=1, request_timeout_s=2, tmp_dir=str(uploads)) as client:
        with ThreadPoolExecutor(2) as pool:
            in_model = pool.submit(post_file, client, small_clip)
            assert gated.entered.wait(30)
            queued = pool.submit(post_file, client, small_clip)
            for response in (in_model.result(), queued.result()):
                assert response.status_code == 504
                assert "no answer within 2 s (--request_timeout_s)" in response.json()["detail"]
        # The queued request's upload is gone; the one in the model stays until its thread ends, and so does
        # its slot: a timeout never lets more work start than --max_concurrent threads can run.
        assert len(list(uploads.iterdir())) == 1
        assert client.get("/health").json()["working"] == 1
        gated.gate.set()
        wait_until(lambda: client.get("/health").json()["working"] == 0, "the timed-out work to end")
        assert post_file(client, small_clip).status_code == 200
    assert gated.calls == [4, 4] and not any(uploads.iterdir())


def test_a_full_queue_gets_503_at_once_and_health_still_answers(predictor, uploads, small_clip, wait_until):
    gated = GatedPredictor(predictor)
    with serving(gated, max_concurrent=1, max_queue=1, tmp_dir=str(uploads)) as client:
        with ThreadPoolExecutor(2) as pool:
            working = pool.submit(post_file, client, small_clip)
            assert gated.entered.wait(30)  # the first request holds the only slot, its clips in the model
            waiting = pool.submit(post_file, client, small_clip)
            # The model thread is blocked, yet /health answers: inference never runs on the event loop.
            wait_until(lambda: client.get("/health").json()["waiting"] == 1, "the second request to queue")
            refused = post_file(client, small_clip)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert "--max_queue 1" in refused.json()["detail"]
            gated.gate.set()
            assert working.result().status_code == 200 and waiting.result().status_code == 200
        assert client.get("/health").json() == {
            "status": "ok",
            "uploading": 0,
            "working": 0,
            "waiting": 0,
            "model_calls": 2,
        }
    assert not any(uploads.iterdir())


def test_concurrent_requests_share_model_calls(predictor, uploads, real_dir, wait_until):
    """Five requests arrive while the model runs on a sixth: they go in together, each gets its own scores."""
    clips = [real_dir / name for name in ("h264_10bits.mp4", "h265_video.mp4", "unordered.mov", "video_0.mov",
                                      "video_90.mov", "v_ApplyEyeMakeup_g01_c01.avi")]  # fmt: skip
    gated = GatedPredictor(predictor)
    limits = {"max_concurrent": 6, "batch_size": 64, "batch_wait_ms": 0, "tmp_dir": str(uploads)}
    with serving(gated, **limits) as client, ThreadPoolExecutor(6) as pool:
        first = pool.submit(post_file, client, clips[0])
        assert gated.entered.wait(30)
        rest = [pool.submit(post_file, client, path) for path in clips[1:]]
        batcher = client.app.state.pipeline.batcher
        wait_until(lambda: batcher.pending() == 5, "five requests' clips to wait for the model")
        gated.gate.set()
        responses = [first.result()] + [future.result() for future in rest]
    counts = [len(predictor.clips_from_file(path)) for path in clips]  # short videos have fewer distinct clips
    assert gated.calls == [counts[0], sum(counts[1:])]  # 6 requests, 2 model calls
    for path, response in zip(clips, responses, strict=True):
        assert response.status_code == 200
        assert_same_predictions(response.json(), predictor.predict(path))
    assert not any(uploads.iterdir())


def test_server_paths_are_refused_unless_allowed_and_then_confined(predictor, uploads, small_clip, tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "secret.mp4"
    allowed.mkdir()
    shutil.copy(small_clip, allowed / "clip.mp4")
    shutil.copy(small_clip, outside)
    (allowed / "link.mp4").symlink_to(outside)
    with serving(predictor, tmp_dir=str(uploads)) as client:
        for response in (client.post("/predict", json={"path": "clip.mp4"}),
                         client.post("/predict", files={"path": (None, "clip.mp4")})):  # fmt: skip
            assert response.status_code == 403 and "--allow_paths DIR" in response.json()["detail"]

    expected = predictor.predict(small_clip)
    with serving(predictor, allow_paths=str(allowed), tmp_dir=str(uploads)) as client:
        as_json = client.post("/predict", json={"path": "clip.mp4"})
        as_form = client.post("/predict", files={"path": (None, "clip.mp4")})
        for response in (as_json, as_form):
            assert response.status_code == 200 and response.json()["video"] == "clip.mp4"
            assert_same_predictions(response.json(), expected)
        for escape in ("../secret.mp4", str(outside), "link.mp4", "sub/../../secret.mp4"):
            response = client.post("/predict", json={"path": escape})
            assert response.status_code == 403, escape
            assert "outside the allowed folder" in response.json()["detail"]
        missing = client.post("/predict", json={"path": "missing.mp4"})
        assert missing.status_code == 404 and "no file 'missing.mp4'" in missing.json()["detail"]
        assert client.post("/predict", json={"file": "clip.mp4"}).status_code == 422
    assert (allowed / "clip.mp4").exists() and outside.exists()  # served files are the user's: never deleted
    assert not any(uploads.iterdir())


def test_cli_defaults_to_loopback_and_passes_the_limits(model_dir, monkeypatch):
    assert build_parser().parse_args(["--model_dir", "m"]).host == "127.0.0.1"
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    assert main(["serve", "--model_dir", str(model_dir), "--max_queue", "3", "--port", "8123"]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert served["app"].state.pipeline.settings == ServeSettings(max_queue=3)


def test_the_onnx_backend_serves_the_same_labels(model_dir, predictor, uploads, small_clip, ten_seconds, monkeypatch):
    """vidcls export, then vidcls serve --backend onnx: answers as the PyTorch model does."""
    assert main(["export", "--model_dir", str(model_dir), "--verify_video", str(small_clip)]) == 0
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app))
    assert main(["serve", "--model_dir", str(model_dir), "--backend", "onnx", "--tmp_dir", str(uploads)]) == 0
    assert type(served["app"].state.pipeline.predictor.model).__name__ == "OnnxClassifier"
    with TestClient(served["app"]) as client:
        for path in (small_clip, ten_seconds):
            response = post_file(client, path, top_k=3)
            assert response.status_code == 200, response.text
            assert_same_predictions(response.json(), predictor.predict(path, top_k=3))
    assert not any(uploads.iterdir())


def test_cli_errors_name_the_fix(model_dir, monkeypatch, capsys):
    assert main(["serve", "--model_dir", str(model_dir), "--max_concurrent", "0"]) == 2
    assert "--max_concurrent must be a positive integer, got 0" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the serve extra were not installed
    assert main(["serve", "--model_dir", str(model_dir)]) == 2
    assert "needs the serve extra: pip install 'vidcls[serve]'" in capsys.readouterr().err


def test_an_upload_cut_off_by_a_disconnect_is_removed(predictor, uploads, wait_until, running_server):
    body, content_type = multipart("clip.mp4", b"\0" * 300_000)
    app = create_app(predictor, ServeSettings(tmp_dir=str(uploads)))
    with running_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as conn:
            head = f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            conn.sendall(f"{head}Content-Length: {10 * len(body)}\r\n\r\n".encode() + body[:200_000])
            wait_until(lambda: any(uploads.iterdir()), "the upload to reach a temporary file")
        # The client is gone a tenth of the way through its body.
        wait_until(lambda: not any(uploads.iterdir()), "the cut-off upload to be removed")
        assert httpx.get(f"{url}/health").json()["waiting"] == 0


def test_load_on_loopback_fails_no_request(predictor, uploads, small_clip, running_server):
    """300 requests, 8 at a time, through a real uvicorn server: every one answered 200. Figures: BENCHMARKS.md."""
    data, expected = small_clip.read_bytes(), predictor.predict(small_clip)[0]["label"]
    app = create_app(predictor, ServeSettings(tmp_dir=str(uploads)))

    def one(number: int) -> tuple[float, int, str]:
        start = time.perf_counter()
        timeline = number % 10 == 0  # timelines decode and wait for the model in turns with the others
        response = client.post("/predict", params={"timeline": timeline}, files={"file": ("clip.mp4", data)})
        ok = response.status_code == 200 and ("timeline" in response.json()) == timeline
        top = response.json()["predictions"][0]["label"] if ok else response.text
        return time.perf_counter() - start, response.status_code, top

    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        with ThreadPoolExecutor(8) as pool:
            start = time.perf_counter()
            results = list(pool.map(one, range(300)))
            seconds = time.perf_counter() - start
        calls = client.get("/health").json()["model_calls"]
    failures = [(status, top) for _, status, top in results if (status, top) != (200, expected)]
    assert not failures, failures[:3]
    percentiles = statistics.quantiles([latency for latency, _, _ in results], n=100)
    p50, p95 = percentiles[49], percentiles[94]
    print(f"\n300 requests, 8 concurrent: {300 / seconds:.0f} requests/s, p50 {1000 * p50:.0f} ms, "
          f"p95 {1000 * p95:.0f} ms, {calls} model calls")  # fmt: skip
    assert not any(uploads.iterdir())


def test_settings_refuse_impossible_limits(tmp_path):
    for bad, flag in (({"max_upload_mb": 0}, "--max_upload_mb"), ({"max_queue": -1}, "--max_queue"),
                      ({"allow_paths": str(tmp_path / "nope")}, "--allow_paths"), ({"max_uploads": 0}, "--max_uploads"),
                      ({"max_windows": 0}, "--max_windows"), ({"upload_timeout_s": float("inf")}, "--upload_timeout_s"),
                      ({"min_upload_kbps": -1.0}, "--min_upload_kbps")):  # fmt: skip
        with pytest.raises(ConfigError, match=flag):
            ServeSettings(**bad)
    assert ServeSettings(max_concurrent=2, max_queue=8).capacity == 10


def test_help_lists_every_limit_with_its_default():
    parser = build_parser()
    text = " ".join(parser.format_help().split())  # argparse wraps lines
    for limit in dataclasses.fields(ServeSettings):
        assert f"--{limit.name} {limit.name.upper()}" in text, limit.name
        assert parser._option_string_actions[f"--{limit.name}"].default == limit.default, limit.name
    assert "(default: 32)" in text and "(default: 10000)" in text  # --max_uploads, --max_windows


# The limits of issue 12, each shown on a real uvicorn server on loopback.


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=5).json()


@contextlib.contextmanager
def open_upload(url: str, body: bytes, content_type: str, sent: int):
    """A raw connection that declares all of ``body`` but sends only its first ``sent`` bytes; yields it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        head = f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body[:sent])
        yield conn


def read_answer(conn: socket.socket, timeout: float = 30) -> tuple[int, str]:
    """(status, detail) of the answer on a raw connection."""
    conn.settimeout(timeout)
    response = http.client.HTTPResponse(conn)
    response.begin()
    return response.status, httpx.Response(response.status, content=response.read()).json()["detail"]


class SlowPredictor:
    """The real predictor, but each model call takes ``pause`` seconds more, and is counted."""

    def __init__(self, predictor, pause: float):
        self.predictor = predictor
        self.pause = pause
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def logits(self, clips):
        self.calls += 1
        time.sleep(self.pause)
        return self.predictor.logits(clips)


def test_request_parameters_out_of_range_get_422_naming_the_limit(
    predictor, uploads, running_server, write_numbered_video, tmp_path
):
    """The issue's window=1e-9&stride=1e-9 once planned 10^8 windows; now it and its kin are refused at once."""
    video = write_numbered_video(tmp_path / "clip.avi", num_frames=110)  # 4.4 s at 25 fps
    refused = [
        (
            {"window": 1e-9, "stride": 1e-9},
            "clip.avi: window 1e-09 s is shorter than one frame of this video (0.04 s at 25 fps): pass at least 0.04",
        ),
        ({"stride": 1e-9}, "clip.avi: stride 1e-09 s is shorter than one frame"),
        (
            {"window": 0.04},
            "clip.avi: window 0.04 s every 0.04 s makes 110 windows over this 4.4 s video, over the "
            "100 limit (--max_windows): pass a longer stride",
        ),
        ({"window": "inf"}, "window: Input should be a finite number"),
        ({"stride": "nan"}, "stride: Input should be a finite number"),
        ({"stride": 0}, "stride: Input should be greater than 0"),
        ({"top_k": 0}, "top_k: Input should be greater than or equal to 1"),
        ({"top_k": 10**30}, "top_k: Input should be less than or equal to 1000"),
    ]
    app = create_app(predictor, ServeSettings(max_windows=100, tmp_dir=str(uploads)))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for params, detail in refused:
            start = time.monotonic()
            with open(video, "rb") as file:
                response = client.post("/predict", params={"timeline": True, **params}, files={"file": file})
            assert (response.status_code, response.json()["detail"][: len(detail)]) == (422, detail), params
            assert time.monotonic() - start < 5, params  # no window is planned, no frame decoded
        assert health(url) == {"status": "ok", "uploading": 0, "working": 0, "waiting": 0, "model_calls": 0}
        with open(video, "rb") as file:  # at the limits: one frame per window, 100 windows; top_k past the labels
            params = {"timeline": True, "window": 0.04, "stride": 0.044, "top_k": 1000}
            response = client.post("/predict", params=params, files={"file": file})
        assert response.status_code == 200, response.text
        assert len(response.json()["timeline"]["windows"]) == 100 and len(response.json()["predictions"]) == 3
    assert not any(uploads.iterdir())


def test_a_timed_out_request_stops_its_work_and_frees_its_slot_and_upload(
    predictor, uploads, wait_until, running_server, write_numbered_video, tmp_path
):
    video = write_numbered_video(tmp_path / "clip.avi", num_frames=100)
    slow = SlowPredictor(predictor, pause=0.1)
    limits = ServeSettings(max_concurrent=1, request_timeout_s=1, batch_size=1, tmp_dir=str(uploads))
    with running_server(create_app(slow, limits)) as url, httpx.Client(base_url=url, timeout=30) as client:
        # 100 windows of a frame, one model call each: 10 s of work, ten times the time limit.
        with open(video, "rb") as file:
            params = {"timeline": True, "window": 0.04, "stride": 0.04}
            response = client.post("/predict", params=params, files={"file": file})
        assert response.status_code == 504
        assert response.json()["detail"].startswith("no answer within 1 s (--request_timeout_s)")
        # The worker thread stops at its next step: its slot and its upload are free within a model call or two.
        wait_until(lambda: health(url)["working"] == 0 and not any(uploads.iterdir()), "the work to stop", 5)
        stopped_at = slow.calls
        assert stopped_at < 30  # of the 101 a whole answer takes
        with open(video, "rb") as file:
            assert client.post("/predict", files={"file": file}).status_code == 200  # the slot serves the next one
        assert slow.calls == stopped_at + 1
    assert not any(uploads.iterdir())


def test_slow_uploads_hold_no_place_for_the_model(
    predictor, uploads, wait_until, running_server, write_numbered_video, tmp_path, monkeypatch
):
    """Ten clients sending a few bytes and then nothing once took every place (2 working + 8 waiting)."""
    monkeypatch.setattr(vidcls.serve.uploads, "UPLOAD_GRACE_S", 60.0)  # no rate check during the test
    data = write_numbered_video(tmp_path / "clip.avi", num_frames=30).read_bytes()
    body, content_type = multipart("clip.avi", data)
    headers = body.index(b"\r\n\r\n") + 4  # the file part's headers: its temporary file exists
    app = create_app(predictor, ServeSettings(tmp_dir=str(uploads)))
    with running_server(app) as url:
        with contextlib.ExitStack() as slow:
            for _ in range(10):
                slow.enter_context(open_upload(url, body, content_type, sent=headers + 10))
            wait_until(lambda: health(url)["uploading"] == 10, "ten slow uploads to be open")
            response = httpx.post(f"{url}/predict", files={"file": ("clip.avi", data)}, timeout=30)
            assert response.status_code == 200, response.text
            assert health(url) == {"status": "ok", "uploading": 10, "working": 0, "waiting": 0, "model_calls": 1}
            assert len(list(uploads.iterdir())) == 10
        # The slow clients hang up: each upload is dropped with its file.
        wait_until(lambda: health(url)["uploading"] == 0 and not any(uploads.iterdir()), "the slow uploads to go")


def test_uploads_too_slow_too_long_or_too_many_are_refused(predictor, uploads, wait_until, running_server, monkeypatch):
    monkeypatch.setattr(vidcls.serve.uploads, "UPLOAD_GRACE_S", 0.5)
    body, content_type = multipart("clip.mp4", b"\0" * 100_000)
    headers = body.index(b"\r\n\r\n") + 4

    def trickle(conn: socket.socket, stop: threading.Event) -> None:  # 20 bytes/s, far under 64 kbit/s
        with contextlib.suppress(OSError):
            for byte in body[headers + 10 :]:
                if stop.wait(0.05):
                    return
                conn.sendall(bytes([byte]))

    with running_server(create_app(predictor, ServeSettings(tmp_dir=str(uploads)))) as url:
        with open_upload(url, body, content_type, sent=headers + 10) as conn, ThreadPoolExecutor(1) as pool:
            stop = threading.Event()
            pool.submit(trickle, conn, stop)
            try:
                status, detail = read_answer(conn)
            finally:
                stop.set()
        assert status == 408
        assert re.fullmatch(r"upload too slow: \d+ bytes in \d+\.\d s, under the 64 kbit/s minimum "
                            r"\(--min_upload_kbps\)", detail), detail  # fmt: skip
        wait_until(lambda: not any(uploads.iterdir()), "the slow upload's file to go")

    limits = ServeSettings(upload_timeout_s=1, min_upload_kbps=0, max_uploads=2, tmp_dir=str(uploads))
    with running_server(create_app(predictor, limits)) as url:
        with open_upload(url, body, content_type, sent=headers + 10) as first:
            with open_upload(url, body, content_type, sent=headers + 10):
                wait_until(lambda: health(url)["uploading"] == 2, "two uploads to be open")
                third = httpx.post(f"{url}/predict", files={"file": ("clip.mp4", b"\0")}, timeout=30)
                assert third.status_code == 503 and third.headers["retry-after"] == "1"
                assert third.json()["detail"] == "busy: 2 uploads in progress (--max_uploads 2); retry in a moment"
                assert read_answer(first) == (408, "upload not received within 1 s (--upload_timeout_s)")
        wait_until(lambda: health(url)["uploading"] == 0 and not any(uploads.iterdir()), "the uploads to go")


def test_forms_cut_short_or_of_too_many_parts_are_refused_at_once(
    predictor, uploads, running_server, write_numbered_video, tmp_path
):
    data = write_numbered_video(tmp_path / "clip.avi", num_frames=30).read_bytes()
    body, content_type = multipart("clip.avi", data)
    closing = body.rindex(b"\r\n--")
    # 18 MB of tiny fields: refused at the ninth part, before the rest is even sent.
    part = b'--vidcls-test-boundary\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n'
    tiny = part * (18_000_000 // len(part)) + b"--vidcls-test-boundary--\r\n"
    with running_server(create_app(predictor, ServeSettings(tmp_dir=str(uploads)))) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for cut in (body[:-4], body[:closing], body[: len(body) // 2]):  # without "--", without the boundary
                response = client.post("/predict", content=cut, headers={"content-type": content_type})
                assert response.status_code == 400
                assert response.json()["detail"] == (
                    "invalid multipart/form-data body: it ends before the closing boundary"
                )
            assert client.post("/predict", content=body, headers={"content-type": content_type}).status_code == 200
            seven_fields = {f"note{i}": (None, "hello") for i in range(7)}
            assert client.post("/predict", files={"file": ("clip.avi", data), **seven_fields}).status_code == 200
            big_fields = {f"note{i}": (None, "x" * 20_000) for i in range(4)}  # 80 kB: over 64 KiB in all
            response = client.post("/predict", files={"file": ("clip.avi", data), **big_fields})
            assert response.status_code == 413
            assert response.json()["detail"] == "form fields other than 'file' hold 64 KiB at most, all together"
        start = time.monotonic()
        with open_upload(url, tiny, content_type, sent=65536) as conn:
            status, detail = read_answer(conn)
        assert (status, detail) == (400, "a form of more than 8 parts: send the video in 'file' alone")
        assert time.monotonic() - start < 2
        assert health(url)["uploading"] == 0
    assert not any(uploads.iterdir())


def test_nothing_the_server_sends_refers_to_another_host(predictor, running_server):
    """Offline, every page and document works: no CDN script (Swagger UI's), no link elsewhere."""
    with running_server(create_app(predictor, ServeSettings())) as url, httpx.Client(base_url=url) as client:
        paths = ("/", "/openapi.json", "/labels", "/health", "/docs", "/redoc", "/docs/oauth2-redirect",
                 "/favicon.ico", "/static/index.html")  # fmt: skip
        sent = {path: client.get(path) for path in paths}
        sent["GET /predict"] = client.get("/predict")
        sent["POST /predict"] = client.post("/predict", content=b"hello", headers={"content-type": "text/plain"})
        own = url.removeprefix("http://")
        for what, response in sent.items():
            hosts = set(re.findall(r"//([\w.-]+(?::\d+)?)", response.text))  # http://h, https://h, //h
            assert hosts <= {own}, (what, hosts)
        assert [path for path, response in sent.items() if response.status_code == 200] == [
            "/", "/openapi.json", "/labels", "/health"
        ]  # fmt: skip
        assert 'href="openapi.json"' in sent["/"].text and sent["/openapi.json"].json()["info"]["title"] == "vidcls"
