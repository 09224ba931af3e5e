"""SIGTERM drains: readiness turns false at once, new requests get 503 + Retry-After, the
stream under way finishes whole, then the process exits (a real composer process)."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import av
import httpx
import pytest

from tests.composer.conftest import SERVICE_ENV
from tooling.supervise import free_port, run_service

pytestmark = [pytest.mark.engine, pytest.mark.timeout(180)]


def test_sigterm_lets_the_stream_under_way_finish_and_refuses_new_work(
    tiny_musicgen: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {**SERVICE_ENV, "COMPOSER_MODEL": str(tiny_musicgen), "COMPOSER_PORT": str(port)}
    with run_service("composer", env, tmp_path / "composer.log", port) as composer:
        form = {"description": "a long drone", "duration": "20", "seed": "3"}
        with httpx.stream("POST", f"{composer.url}/v1/compose", data=form, timeout=120) as stream:
            pieces = stream.iter_raw()
            body = next(pieces) + next(pieces)  # the header and the first audio
            composer.process.send_signal(signal.SIGTERM)
            ready = httpx.get(f"{composer.url}/readyz", timeout=5)
            assert ready.status_code == 503 and ready.json()["detail"] == "shutting down"
            refused = httpx.post(f"{composer.url}/v1/compose", data=form, timeout=5)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            assert int(refused.headers["retry-after"]) >= 1
            body += b"".join(pieces)  # the stream under way runs to its end
        with av.open(io.BytesIO(body), mode="r") as container:
            samples = sum(frame.samples for frame in container.decode(audio=0))
        assert samples == 20 * 32000
        assert composer.process.wait(timeout=30) == 0  # then it stops, cleanly
