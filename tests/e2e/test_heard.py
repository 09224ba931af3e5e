"""An audio clip heard through the whole pipeline: the gateway in front of a captioner serving
the tiny Qwen2.5-Omni thinker (real vLLM) and the stack's composer, real processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from tests.captioner.conftest import SERVICE_ENV as CAPTIONER_ENV
from tests.e2e.conftest import Stack, venv_python
from tests.e2e.jobs import jobs_gateway
from tests.media_factory import wav_bytes
from tooling.supervise import free_port, run_service

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def hearing_gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = tmp_path_factory.mktemp("models") / "tiny-qwen2.5-omni"
    build = [venv_python("captioner"), "-m", "captioner.tiny", str(model), "--kind", "omni"]
    subprocess.run(build, check=True, capture_output=True)
    logs = tmp_path_factory.mktemp("logs")
    port = free_port()
    captioner_env = {**CAPTIONER_ENV, "CAPTIONER_MODEL": str(model), "CAPTIONER_PORT": str(port)}
    with run_service(
        "captioner",
        captioner_env,
        logs / "captioner.log",
        port,
        ready_timeout_s=300,
        python=venv_python("captioner"),
    ) as captioner:
        jobs = tmp_path_factory.mktemp("jobs")
        with jobs_gateway(stack, jobs, GATEWAY_CAPTIONER_URL=captioner.url) as gateway:
            yield gateway.url


def test_a_clip_is_heard_end_to_end(hearing_gateway: str) -> None:
    served = httpx.get(f"{hearing_gateway}/models").json()
    assert served["captioner_hears_audio"] and not served["composer_takes_melody"]
    assert served["audio_uses"] == ["heard"]
    hum = {"audio": ("hum.wav", wav_bytes(2.0, rate=16000), "audio/wav")}
    data = {"prompt": "a campfire song", "duration": "1"}
    for use in ("auto", "heard"):
        response = httpx.post(
            f"{hearing_gateway}/generate", data={**data, "audio_use": use}, files=hum, timeout=300
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-weavewave-audio-use"] == "heard"
        brief = json.loads(unquote(response.headers["x-weavewave-brief"]))
        assert brief["media"]["audio"]["used"] is True
    ignored = httpx.post(
        f"{hearing_gateway}/generate", data={**data, "audio_use": "ignore"}, files=hum, timeout=300
    )
    assert ignored.status_code == 200, ignored.text
    assert ignored.headers["x-weavewave-audio-use"] == "unused"
    brief = json.loads(unquote(ignored.headers["x-weavewave-brief"]))
    assert brief["media"]["audio"]["used"] is False  # decoded, reported, kept from the model
    melody = httpx.post(
        f"{hearing_gateway}/generate", data={**data, "audio_use": "melody"}, files=hum, timeout=60
    )
    assert melody.status_code == 422 and "they can: heard" in melody.json()["error"]["message"]
