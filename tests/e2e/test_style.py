"""An uploaded clip's style through the whole pipeline: the gateway knows MusicGen (the stack's)
and MusicGen-Style (the tiny audiocraft build, its own composer process) by name; the clip's
excerpt conditions the music, chosen by `auto` or by name with its knobs, on /generate, /compose
and jobs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from tests.e2e.conftest import Stack, tiny_composer
from tests.e2e.jobs import composers_gateway, seconds_of, submit, wait_for
from tests.media_factory import image_bytes, wav_bytes
from tooling.supervise import RunningService

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def style_composer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    build = [
        "composer.tiny",
        "--kind",
        "audiocraft",
        "--style",
        "--hub-cache",
        os.environ["HF_HUB_CACHE"],
    ]
    with tiny_composer(build, "audiocraft", "tiny-musicgen-style", tmp_path_factory) as composer:
        yield composer


@pytest.fixture(scope="module")
def style_gateway(
    stack: Stack, style_composer: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    named = {"musicgen": stack.composer.url, "style": style_composer.url}
    with composers_gateway(stack, tmp_path_factory, named) as gateway:
        yield gateway.url


CLIP = ("audio", ("riff.wav", wav_bytes(5.0, rate=32000, freq=220.0), "audio/wav"))


def test_a_photo_and_a_clip_make_music_in_the_clips_style(
    style_gateway: str, style_composer: RunningService
) -> None:
    served = httpx.get(f"{style_gateway}/models").json()
    (card,) = [c for c in served["composers"] if c["name"] == "style"]
    assert card["audio_uses"] == ["style"] and card["takes_melody"] is False
    photo = ("images", ("dusk.png", image_bytes(seed=4), "image/png"))
    data = {"duration": "1", "seed": "6", "model": "style"}
    response = httpx.post(f"{style_gateway}/generate", data=data, files=[photo, CLIP], timeout=240)
    assert response.status_code == 200, response.text
    assert response.headers["x-weavewave-audio-use"] == "style"  # auto: the composer's one use
    assert abs(seconds_of(response.content) - 1.0) < 0.01
    # the composer heard the clip's middle 3 s: asked directly for that excerpt, the same music
    description = unquote(response.headers["x-weavewave-description"])
    direct = {
        "description": description,
        "duration": "1",
        "seed": "6",
        "format": "wav",
        "audio_use": "style",
        "style_start": "1",
        "style_length": "3",
    }
    same = httpx.post(f"{style_composer.url}/v1/compose", data=direct, files=[CLIP], timeout=120)
    assert same.status_code == 200 and same.content == response.content
    plain = httpx.post(
        f"{style_gateway}/compose", data={**data, "description": description}, timeout=120
    )
    assert plain.status_code == 200 and plain.content != response.content


def test_compose_and_jobs_take_the_style_knobs(style_gateway: str) -> None:
    knobs = {
        "description": "dreamy synthwave",
        "duration": "1",
        "seed": "2",
        "model": "style",
        "audio_use": "style",
        "style_start": "0.5",
        "style_length": "2",
    }
    single = httpx.post(f"{style_gateway}/compose", data=knobs, files=[CLIP], timeout=120)
    assert single.status_code == 200, single.text
    assert single.headers["x-weavewave-audio-use"] == "style"
    double = httpx.post(
        f"{style_gateway}/compose", data={**knobs, "text_guidance": "5"}, files=[CLIP], timeout=120
    )
    assert double.status_code == 200 and double.content != single.content
    job = submit(style_gateway, {**knobs, "prompt": "synthwave"}, files=[CLIP])
    done = wait_for(style_gateway, job["id"], {"done", "failed"})
    assert done["state"] == "done", done
    refused = httpx.post(
        f"{style_gateway}/compose", data={**knobs, "model": "musicgen"}, files=[CLIP], timeout=60
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "audio_use_unsupported"
    too_long = httpx.post(
        f"{style_gateway}/compose", data={**knobs, "style_length": "6"}, files=[CLIP], timeout=60
    )
    assert too_long.status_code == 422, too_long.text
