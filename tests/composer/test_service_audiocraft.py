"""The composer service with `COMPOSER_BACKEND=audiocraft`, as a real process, on the stereo
tiny package (the mono one is covered by the backend tests)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests.composer.test_backend_audiocraft import tiny_audiocraft_stereo  # noqa: F401
from weavewave_common.supervise import RunningService, free_port, run_service

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def audiocraft_composer(
    tiny_audiocraft_stereo: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    port = free_port()
    env = {
        "COMPOSER_BACKEND": "audiocraft",
        "COMPOSER_MODEL": str(tiny_audiocraft_stereo),
        "COMPOSER_PORT": str(port),
        "COMPOSER_WINDOW_S": "2",
        "COMPOSER_EXTEND_STRIDE_S": "1",
    }
    log = tmp_path_factory.mktemp("logs") / "composer-audiocraft.log"
    with run_service("composer", env, log, port, ready_timeout_s=120) as service:
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
