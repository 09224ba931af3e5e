"""The studio in a real headless Chromium (Debian's, driven by Playwright), for the tests that
look at it; screenshots land in out/screenshots/."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import pytest

from tests.e2e.conftest import REPO

SHOTS = REPO / "out" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@contextmanager
def studio_page(url: str) -> Iterator[Any]:
    """The studio at `url` in headless Chromium (skipped where there is none, outside CI)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("no Chromium here: apt-get install chromium (CI installs it)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1000, "height": 1300}
        )
        page = context.new_page()
        page.goto(f"{url}/")
        yield page
        browser.close()


def downloaded(page: Any, tmp_path: Path) -> tuple[int, int, float]:
    """Click the studio's download; the file's sample rate, channels and seconds."""
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "download.wav"
    download.value.save_as(saved)
    with av.open(io.BytesIO(saved.read_bytes()), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.rate, stream.codec_context.channels, samples / stream.rate
