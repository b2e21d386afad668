"""The page at / in a real browser: Debian's Chromium, headless, driven by Playwright against vidcls serve on
loopback. A clip chosen with the file picker shows the predictor's label; a dropped non-video shows the error.
"""

import base64
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from vidcls.engine.predict import Predictor
from vidcls.serve.app import create_app
from vidcls.serve.settings import ServeSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
# `make test` installs Debian's Chromium where it is missing; without it these tests fail, saying so.
pytestmark = pytest.mark.usefixtures("shared_videos")


@pytest.fixture(scope="module")
def served(tmp_path_factory, save_micro_model, running_server):
    """(base URL, predictor, uploads folder) of a uvicorn server running the micro model."""
    predictor = Predictor.from_pretrained(save_micro_model(tmp_path_factory.mktemp("model")), "cpu")
    uploads = tmp_path_factory.mktemp("uploads")
    with running_server(create_app(predictor, ServeSettings(tmp_dir=str(uploads)), model_name="micro")) as url:
        yield url, predictor, uploads


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"no browser at {CHROMIUM}: run `make test`, which installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served):
    """A fresh page at /, with the URL of every request it makes in ``page.requested``."""
    context = browser.new_context()
    page = context.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.goto(f"{served[0]}/")
    yield page
    context.close()


def test_a_chosen_clip_shows_the_predicted_label_bars_and_timeline(page, served, real_dir):
    url, predictor, uploads = served
    clip = real_dir / "h265_video.mp4"  # its top label differs from most clips' with this untrained model
    expected = predictor.predict(clip)
    expect(page.locator("#model")).to_have_text("Model micro, 3 labels: left, right, up")
    page.set_input_files("#file", str(clip))
    expect(page.locator("#result")).to_be_visible(timeout=30_000)
    assert page.locator("#top-label").text_content() == expected[0]["label"]
    assert page.locator("#video-name").text_content() == clip.name
    assert page.locator(".bar .name").all_text_contents() == [p["label"] for p in expected]
    assert page.locator("#timeline div").count() >= 1 and page.locator("#segments li").count() >= 1
    assert page.locator("#error").is_hidden()
    # The video itself, the frames the model saw, and the time it took.
    assert page.locator("#preview").get_attribute("src").startswith("blob:")
    assert page.locator("#frames img").count() == predictor.spec.num_frames
    expect(page.locator("#timing")).to_contain_text("s decoding and scoring")
    # Nothing from the internet, so it works offline: the server, the chosen file (blob:) and frames inlined (data:).
    assert all(address.startswith((url, f"blob:{url}", "data:image/jpeg")) for address in page.requested)
    assert not any(uploads.iterdir())


def test_a_dropped_file_that_is_not_a_video_shows_why(page, served):
    text = base64.b64encode(b"a text file renamed .avi\n" * 20).decode()
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "video/x-msvideo" }));
            return transfer;
        }""",
        [text, "notes.avi"],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    expect(page.locator("#error")).to_be_visible(timeout=30_000)
    expect(page.locator("#error")).to_contain_text("415: notes.avi: cannot open as a video")
    assert page.locator("#result").is_hidden()
    assert not any(served[2].iterdir())


def test_the_api_section_names_this_server_and_links_its_openapi(page, served):
    url = served[0]
    expect(page.locator("#curl")).to_have_text(f"curl -F file=@clip.mp4 '{url}/predict?top_k=5&timeline=true'")
    page.click("#openapi")
    page.wait_for_url(f"{url}/openapi.json")
    assert '"/predict"' in page.content()
    assert all(address.startswith(url) for address in page.requested)
