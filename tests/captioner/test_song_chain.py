"""A photo and `vocals=true` become a sung song, through real processes: the gateway, the
captioner service (in this process, its engine scripted — the tiny VLM writes no valid JSON)
and a composer serving the tiny ACE-Step. The lyrics the captioner writes are the ones sung."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import uvicorn

from captioner.app import create_app
from captioner.config import CaptionerSettings
from tests.captioner.test_brief_chain import ScriptedEngine
from tests.captioner.test_song_brief import SONG, WRITTEN
from tests.e2e.conftest import tiny_composer, venv_python
from tests.media_factory import image_bytes
from tooling.supervise import RunningService, free_port, run_service

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]


@contextmanager
def captioner_serving(engine: ScriptedEngine) -> Iterator[str]:
    """The real captioner app over HTTP, on a thread of this process, answering with `engine`."""

    @asynccontextmanager
    async def scripted() -> AsyncIterator[ScriptedEngine]:
        yield engine

    port = free_port()
    app = create_app(CaptionerSettings(port=port), engine_factory=scripted)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if server.started and httpx.get(f"{url}/readyz").status_code == 200:
                break
            threading.Event().wait(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def ace_step(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    build = ["composer.tiny", "--kind", "ace-step"]
    with tiny_composer(build, "diffusers", "tiny-ace-step", tmp_path_factory) as composer:
        yield composer


@contextmanager
def gateway_in_front(captioner: str, composer: str, logs: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_CAPTIONER_URL": captioner,
        "GATEWAY_COMPOSER_URL": composer,
        "GATEWAY_JOBS_DIR": str(logs / "jobs"),
    }
    with run_service("gateway", env, logs / "gateway.log", port, python=venv_python("gateway")) as (
        gateway
    ):
        yield gateway.url


def test_a_photo_with_vocals_is_sung_with_the_lyrics_written_for_it(
    ace_step: RunningService, tmp_path: Path
) -> None:
    engine = ScriptedEngine(json.dumps(SONG))
    photo = ("images", ("night.png", image_bytes(320, 240), "image/png"))
    form = {"vocals": "true", "duration": "2", "seed": "5"}
    with (
        captioner_serving(engine) as captioner,
        gateway_in_front(captioner, ace_step.url, tmp_path) as gateway,
    ):
        response = httpx.post(f"{gateway}/generate", data=form, files=[photo], timeout=300)
    assert response.status_code == 200, response.text
    # The model was shown the photo and asked for a song with vocals.
    (asked,) = engine.requests
    content = asked.messages[1]["content"]
    assert isinstance(content, list)
    assert any(part.get("type") == "image" for part in content)
    assert "song with vocals" in "\n".join(str(part.get("text", "")) for part in content)
    brief = json.loads(unquote(response.headers["x-weavewave-brief"]))
    assert brief["lyrics"] == WRITTEN and brief["media"]["images"][0]["width"] == 320
    assert response.headers["x-channels"] == "2"
    assert response.headers["x-sample-rate"] == "48000"
    # ACE-Step sang the written lyrics: asked directly with them, it makes the same bytes.
    direct = {
        "description": brief["description"],
        "lyrics": WRITTEN,
        "vocal_language": "en",
        "bpm": str(SONG["tempo_bpm"]),
        "key": SONG["key"],
        "time_signature": "4/4",
        "duration": "2",
        "seed": "5",
        "format": "wav",
    }
    same = httpx.post(f"{ace_step.url}/v1/compose", data=direct, timeout=120)
    assert same.status_code == 200 and same.content == response.content
