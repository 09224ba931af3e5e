"""A hummed melody through the whole pipeline: the gateway in front of the shared captioner and
a composer serving the tiny musicgen-melody checkpoint (audiocraft backend), real processes."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from urllib.parse import unquote

import av
import httpx
import pytest

from tests.e2e.conftest import Stack, venv_python
from tests.e2e.jobs import jobs_gateway
from tests.media_factory import image_bytes, wav_bytes
from tooling.supervise import free_port, run_service

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def melody_gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = tmp_path_factory.mktemp("models") / "tiny-musicgen-melody"
    build = ["-m", "composer.tiny", str(model), "--kind", "audiocraft", "--melody"]
    hub_cache = ["--hub-cache", os.environ["HF_HUB_CACHE"]]
    subprocess.run([venv_python("composer"), *build, *hub_cache], check=True, capture_output=True)
    logs = tmp_path_factory.mktemp("logs")
    port = free_port()
    composer_env = {
        "COMPOSER_BACKEND": "audiocraft",
        "COMPOSER_MODEL": str(model),
        "COMPOSER_PORT": str(port),
    }
    with run_service(
        "composer",
        composer_env,
        logs / "composer.log",
        port,
        ready_timeout_s=120,
        python=venv_python("composer"),
    ) as composer:
        jobs = tmp_path_factory.mktemp("jobs")
        with jobs_gateway(stack, jobs, GATEWAY_COMPOSER_URL=composer.url) as gateway:
            yield gateway.url


def samples_of(body: bytes) -> int:
    with av.open(io.BytesIO(body), mode="r") as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def test_a_photo_and_a_hum_make_music_that_follows_the_hum(melody_gateway: str) -> None:
    files = [
        ("images", ("beach.png", image_bytes(seed=3), "image/png")),
        ("audio", ("hum.wav", wav_bytes(1.5, freq=330.0), "audio/wav")),
    ]
    data = {"duration": "2", "seed": "8"}
    response = httpx.post(f"{melody_gateway}/generate", data=data, files=files, timeout=240)
    assert response.status_code == 200, response.text
    assert response.headers["x-weavewave-audio-use"] == "melody"
    assert samples_of(response.content) == 2 * 32000
    # the same request (its very brief, its seed) without the hum: other music
    description = response.headers["x-weavewave-description"]
    plain = httpx.post(
        f"{melody_gateway}/compose",
        data={**data, "description": unquote(description)},
        timeout=240,
    )
    assert plain.status_code == 200, plain.text
    with_hum = httpx.post(
        f"{melody_gateway}/compose",
        data={**data, "description": unquote(description)},
        files=files[1:],
        timeout=240,
    )
    assert with_hum.content == response.content  # the same music as /generate made
    assert plain.content != response.content  # the melody changed it


def test_compose_with_another_melody_gives_other_music(melody_gateway: str) -> None:
    data = {"description": "folk guitar by a campfire", "duration": "1.5", "seed": "4"}

    def compose(freq: float) -> bytes:
        hum = {"audio": ("hum.wav", wav_bytes(1.5, freq=freq), "audio/wav")}
        response = httpx.post(f"{melody_gateway}/compose", data=data, files=hum, timeout=120)
        assert response.status_code == 200, response.text
        return response.content

    first, again = compose(262.0), compose(262.0)
    assert first == again  # same seed, same melody: the same music
    # The tiny separator is random, so its chroma maps notes arbitrarily (and chroma ignores
    # octaves): of three different hums, at least one must be heard differently.
    others = {compose(freq) for freq in (330.0, 392.0, 440.0)}
    assert others - {first}
    assert all(samples_of(body) == 48000 for body in others)


def test_a_broken_melody_is_a_clear_4xx(melody_gateway: str) -> None:
    data = {"description": "folk guitar", "duration": "1"}
    junk = {"audio": ("hum.wav", b"RIFF" + os.urandom(64), "audio/wav")}
    response = httpx.post(f"{melody_gateway}/compose", data=data, files=junk, timeout=60)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"]
    assert httpx.get(f"{melody_gateway}/readyz").status_code == 200


def test_audio_use_picks_what_the_clip_is_for(melody_gateway: str) -> None:
    served = httpx.get(f"{melody_gateway}/models").json()
    assert served["composer_takes_melody"] and not served["captioner_hears_audio"]
    assert served["audio_uses"] == ["melody"]
    data = {"description": "folk guitar by a campfire", "duration": "1", "seed": "4"}
    hum = {"audio": ("hum.wav", wav_bytes(1.5, freq=330.0), "audio/wav")}
    answers = {}
    for use in ("auto", "melody", "ignore"):
        response = httpx.post(
            f"{melody_gateway}/compose", data={**data, "audio_use": use}, files=hum, timeout=120
        )
        assert response.status_code == 200, response.text
        answers[use] = (response.headers["x-weavewave-audio-use"], response.content)
    assert answers["auto"] == answers["melody"] and answers["auto"][0] == "melody"
    plain = httpx.post(f"{melody_gateway}/compose", data=data, timeout=120)
    assert answers["ignore"] == ("unused", plain.content)  # the clip left out entirely
    heard = httpx.post(
        f"{melody_gateway}/generate",
        data={"prompt": "a campfire", "duration": "1", "audio_use": "heard"},
        files=hum,
        timeout=120,
    )
    assert heard.status_code == 422
    assert heard.json()["error"]["code"] == "audio_use_unsupported"
    assert "they can: melody" in heard.json()["error"]["message"]
