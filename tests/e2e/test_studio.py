"""The web studio in a real headless Chromium (Debian's, driven by Playwright) against the real
stack: a picture and words in, the brief shown, the music playing while it is composed, the
download, and a readable error for a bad file. Screenshots land in out/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import SHOTS, downloaded, studio_page
from tests.e2e.conftest import Stack
from tests.media_factory import image_bytes, scene_video_bytes, video_bytes, wav_bytes

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def page(stack: Stack) -> Iterator[Any]:
    with studio_page(stack.gateway.url) as opened:
        yield opened


def test_picture_and_words_to_music_that_plays_and_downloads(page: Any, tmp_path: Path) -> None:
    picture = tmp_path / "sunset.png"
    picture.write_bytes(image_bytes(320, 240))
    page.fill("#prompt", "a warm summer evening by the sea")
    page.set_input_files("#images", str(picture))
    page.click("#describe")
    page.wait_for_function("document.querySelector('#description').value.length > 0")
    page.fill("#duration", "3")
    page.fill("#seed", "7")
    page.click("#compose")
    # the player starts while the job is still being composed, then runs on
    page.wait_for_function("document.querySelector('#player').currentTime > 0.2", timeout=120_000)
    page.wait_for_selector("#download:not([hidden])", timeout=120_000)
    # The job is done; the player learns the length once its own stream of the file has ended
    # (Infinity until then: a two-channel file takes it a moment longer).
    page.wait_for_function("isFinite(document.querySelector('#player').duration)")
    assert page.evaluate("document.querySelector('#player').duration") == pytest.approx(3, abs=0.05)
    assert page.input_value("#description")
    assert page.inner_text("#status").startswith("done")
    assert page.inner_text("#analysis").startswith("Measured: fit ")  # the judge's, under it
    assert "LUFS" in page.inner_text("#analysis")
    page.screenshot(path=str(SHOTS / "studio-done.png"), full_page=True)
    _, _, seconds = downloaded(page, tmp_path)
    assert seconds == pytest.approx(3.0, abs=0.02)


def test_a_video_comes_back_with_its_new_soundtrack(page: Any, tmp_path: Path) -> None:
    clip = tmp_path / "walk.mp4"
    clip.write_bytes(video_bytes(seconds=2.0, fps=10))
    page.reload()
    page.set_input_files("#video", str(clip))
    page.check("#match-video")
    page.check("#mux")
    page.click("#compose")
    page.wait_for_selector("#result-video:not([hidden])", timeout=120_000)
    page.wait_for_function("document.querySelector('#result-video').duration > 0")
    duration = page.evaluate("document.querySelector('#result-video').duration")
    assert duration == pytest.approx(2.0, abs=0.1)  # the video, as long as it was
    assert page.get_attribute("#download", "download").endswith(".mp4")
    page.screenshot(path=str(SHOTS / "studio-video.png"), full_page=True)


def test_a_videos_sections_show_on_a_strip_and_are_composed_as_edited(
    page: Any, tmp_path: Path
) -> None:
    clip = tmp_path / "cuts.mp4"
    clip.write_bytes(scene_video_bytes([6.0, 12.5], seconds=19, fps=10, gop=20))
    page.reload()
    page.set_input_files("#video", str(clip))
    page.click("#describe")
    page.wait_for_selector("#sections-box:not([hidden])", timeout=120_000)
    starts = page.eval_on_selector_all(".section-start", "els => els.map((e) => Number(e.value))")
    assert starts == [0, 6, 12.5]
    assert page.is_disabled("#sections li:nth-child(1) .section-start")  # the first starts at 0
    page.fill("#sections li:nth-child(2) .section-start", "5")
    page.fill("#sections li:nth-child(3) .section-description", "A lone cello, slow and grave.")
    page.fill("#duration", "13")
    brief = page.evaluate("JSON.parse(jobForm().get('brief'))")  # what Compose sends
    assert [(s["start_s"], s["end_s"]) for s in brief["sections"]] == [
        (0, 5),
        (5, 12.5),
        (12.5, 19.0),
    ]
    assert brief["sections"][2]["description"] == "A lone cello, slow and grave."
    page.click("#compose")
    page.wait_for_selector("#download:not([hidden])", timeout=120_000)
    page.screenshot(path=str(SHOTS / "studio-sections.png"), full_page=True)


def test_a_bad_file_shows_a_readable_error(page: Any, tmp_path: Path) -> None:
    fake = tmp_path / "not-a-picture.png"
    fake.write_text("<html>this is not a picture</html>")
    page.reload()
    page.set_input_files("#images", str(fake))
    page.click("#describe")
    page.wait_for_selector("#error:not([hidden])")
    message = page.inner_text("#error")
    assert "not-a-picture.png" in message or "image" in message.lower()
    assert "Traceback" not in message and "{" not in message
    page.screenshot(path=str(SHOTS / "studio-error.png"), full_page=True)


def test_an_audio_clip_offers_only_what_the_models_can_do(
    page: Any, stack: Stack, tmp_path: Path
) -> None:
    hum = tmp_path / "hum.wav"
    hum.write_bytes(wav_bytes(1.0))
    page.reload()
    assert page.is_hidden("#audio-use-box")
    page.set_input_files("#audio", str(hum))
    page.wait_for_selector("#audio-use-box:not([hidden])")
    page.wait_for_function("document.getElementById('audio-use-box').dataset.loaded === 'yes'")
    offered = page.eval_on_selector_all("#audio-use option", "options => options.map(o => o.value)")
    served = httpx.get(f"{stack.gateway.url}/models").json()["audio_uses"]
    assert offered == ["auto", "ignore", *served]  # this stack's models take no audio: []
    page.select_option("#audio-use", "ignore")
    page.fill("#description", "a quiet drone")
    page.fill("#duration", "1")
    page.click("#compose")
    page.wait_for_selector("#download:not([hidden])", timeout=120_000)
    assert page.is_hidden("#error")


def test_a_songs_lyrics_show_in_the_brief_and_a_composer_that_cannot_sing_says_so(
    page: Any,
) -> None:
    lyrics = "[verse]\nLanterns in the rain\n[chorus]\nStay, stay"
    page.reload()
    page.fill("#prompt", "a rainy walk")
    page.fill("#lyrics", lyrics)
    page.click("#describe")
    page.wait_for_selector("#brief-lyrics:not([hidden])", timeout=120_000)
    assert page.inner_text("#brief-lyrics") == lyrics  # kept exactly, through both services
    page.fill("#duration", "1")
    page.click("#compose")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert "does not sing" in page.inner_text("#error")
