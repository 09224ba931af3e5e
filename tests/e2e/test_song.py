"""A song through the whole pipeline: the gateway in front of the stack's captioner and a composer
serving the tiny ACE-Step (diffusers), real processes. The user's lyrics go through the brief
to the composer, which sings them in 48 kHz stereo, on `/generate` and on jobs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from tests.e2e.conftest import Stack, venv_python
from tests.e2e.jobs import jobs_gateway, seconds_of, submit, wait_for
from weavewave_common.supervise import RunningService, free_port, run_service

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

LYRICS = "[verse]\nLanterns in the rain,\nwe walk on\n\n[chorus]\nStay, stay"


@pytest.fixture(scope="module")
def song_composer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    model = tmp_path_factory.mktemp("models") / "tiny-ace-step"
    build = [venv_python("composer"), "-m", "composer.tiny_model", str(model), "--kind", "ace-step"]
    subprocess.run(build, check=True, capture_output=True)
    port = free_port()
    env = {
        "COMPOSER_BACKEND": "diffusers",
        "COMPOSER_MODEL": str(model),
        "COMPOSER_PORT": str(port),
    }
    log = tmp_path_factory.mktemp("logs") / "composer-ace-step.log"
    with run_service(
        "composer", env, log, port, ready_timeout_s=120, python=venv_python("composer")
    ) as composer:
        yield composer


@pytest.fixture(scope="module")
def song_gateway(
    stack: Stack, song_composer: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    jobs = tmp_path_factory.mktemp("jobs")
    with jobs_gateway(stack, jobs, GATEWAY_COMPOSER_URL=song_composer.url) as gateway:
        yield gateway.url


def test_the_users_lyrics_are_sung_end_to_end(
    song_gateway: str, song_composer: RunningService
) -> None:
    served = httpx.get(f"{song_gateway}/models").json()
    assert served["composer_sings"] is True
    data = {"prompt": "a rainy walk", "lyrics": LYRICS, "duration": "2", "seed": "7"}
    response = httpx.post(f"{song_gateway}/generate", data=data, timeout=300)
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == "2"
    assert response.headers["x-sample-rate"] == "48000"
    assert abs(seconds_of(response.content) - 2.0) < 0.02
    brief = json.loads(unquote(response.headers["x-weavewave-brief"]))
    assert brief["lyrics"] == LYRICS
    # The composer sang exactly those words: asked directly, it makes the same bytes, and
    # other words make another song.
    direct = {
        "description": brief["description"],
        "lyrics": LYRICS,
        "duration": "2",
        "seed": "7",
        "format": "wav",
    }
    same = httpx.post(f"{song_composer.url}/v1/compose", data=direct, timeout=120)
    assert same.status_code == 200 and same.content == response.content
    other = {**direct, "lyrics": "[verse]\nother words entirely"}
    assert httpx.post(f"{song_composer.url}/v1/compose", data=other, timeout=120).content != (
        response.content
    )


def test_compose_with_lyrics_and_a_job_both_sing(song_gateway: str) -> None:
    given = {"description": "folk ballad, warm voice", "lyrics": LYRICS, "duration": "1"}
    response = httpx.post(f"{song_gateway}/compose", data={**given, "seed": "3"}, timeout=300)
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == "2"
    job = submit(song_gateway, {"prompt": "a rainy walk", "lyrics": LYRICS, "duration": "1"})
    done = wait_for(song_gateway, job["id"], {"done", "failed"})
    assert done["state"] == "done", done
    audio = httpx.get(f"{song_gateway}/jobs/{done['id']}/audio", timeout=60)
    assert audio.status_code == 200
    assert abs(seconds_of(audio.content) - 1.0) < 0.02
