"""A Python client generated from the live OpenAPI document works with no hand edits."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import av
import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.media_factory import image_bytes, scene_video_bytes

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

CONFIG = """\
package_name_override: weavewave_client
project_name_override: weavewave-client
content_type_overrides:
  audio/wav: application/octet-stream
  audio/flac: application/octet-stream
  audio/mpeg: application/octet-stream
  audio/ogg: application/octet-stream
"""


def test_generated_client_calls_generate_with_an_image(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(CONFIG)
    tools = str(Path(sys.executable).parent)
    subprocess.run(
        [
            f"{tools}/openapi-python-client",
            "generate",
            "--url",
            f"{stack.gateway.url}/openapi.json",
            "--config",
            str(tmp_path / "config.yml"),
            "--output-path",
            str(tmp_path / "weavewave_client"),
            "--meta",
            "none",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
    )
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module("weavewave_client")
        generate = importlib.import_module("weavewave_client.api.music.generate")
        models = importlib.import_module("weavewave_client.models")
        types = importlib.import_module("weavewave_client.types")
        client = client_module.Client(base_url=stack.gateway.url, timeout=httpx.Timeout(180))
        picture = types.File(
            payload=io.BytesIO(image_bytes()), file_name="a.png", mime_type="image/png"
        )
        body = models.GenerateForm(prompt="a calm sea", images=[picture], duration="2", seed=5)
        response = generate.sync_detailed(client=client, body=body)
        assert response.status_code == 200
        audio = response.parsed.payload.read()
        with av.open(io.BytesIO(audio), mode="r") as container:
            samples = sum(frame.samples for frame in container.decode(audio=0))
        assert samples / 32000 == pytest.approx(2.0, abs=0.02)
        # a video with cuts, scored in sections as the client's own enum asks
        cuts = types.File(
            payload=io.BytesIO(scene_video_bytes([6.0], seconds=12, fps=10, gop=20)),
            file_name="cuts.mp4",
            mime_type="video/mp4",
        )
        body = models.GenerateForm(video=cuts, duration="auto", score=models.Score.SECTIONS)
        scored = generate.sync_detailed(client=client, body=body)
        assert scored.status_code == 200
        assert scored.headers["x-sections"] == "0.000,6.000"
        error = generate.sync_detailed(client=client, body=models.GenerateForm(duration="2"))
        assert error.status_code == 422
        assert error.parsed.error.code == "empty_request"
    finally:
        sys.path.remove(str(tmp_path))
