"""The composer service with `COMPOSER_BACKEND=audiocraft`, as a real process, on the stereo
tiny package (the mono one is covered by the backend tests)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests.composer.conftest import serve_composer
from tests.composer.test_backend_audiocraft import tiny_audiocraft_stereo  # noqa: F401
from tooling.supervise import RunningService

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def audiocraft_composer(
    tiny_audiocraft_stereo: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    with serve_composer(
        "audiocraft", tiny_audiocraft_stereo, tmp_path_factory, window_s="2", extend_stride_s="1"
    ) as service:
        yield service


def test_streams_stereo_flac_of_the_requested_length(audiocraft_composer: RunningService) -> None:
    data = {"description": "lofi beat", "duration": "3", "format": "flac", "seed": "5"}
    response = httpx.post(f"{audiocraft_composer.url}/v1/compose", data=data, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == "2"
    with av.open(io.BytesIO(response.content), mode="r") as container:
        assert container.streams.audio[0].channels == 2
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert samples == 3 * 32000
    again = httpx.post(f"{audiocraft_composer.url}/v1/compose", data=data, timeout=120)
    assert again.content == response.content
    models = httpx.get(f"{audiocraft_composer.url}/v1/models").json()["models"]
    assert models[0]["backend"] == "audiocraft"
