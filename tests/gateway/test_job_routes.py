"""The jobs routes' own rules (`gateway/routes/jobs.py`): a `Range` the finished file cannot
serve is refused in the error envelope, by the rules Starlette's `FileResponse` applies; a job
is followed by long polls."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.routes.jobs import checked_range
from weavewave_common.errors import BadRequest


def asking(range_header: str | None) -> Request:
    headers = [] if range_header is None else [(b"range", range_header.encode())]
    return Request({"type": "http", "method": "GET", "headers": headers})


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "audio.wav"
    path.write_bytes(bytes(1000))
    return path


def test_a_range_the_file_can_serve_passes(audio: Path) -> None:
    assert checked_range(asking(None), audio) is None
    assert checked_range(asking("bytes=0-99"), audio) is None
    assert checked_range(asking("bytes=-100"), audio) is None


@pytest.mark.parametrize("asked", ["bytes=abc", "pages=0-1", "bytes=50-10", "bytes"])
def test_a_malformed_range_is_a_400_in_the_envelope(audio: Path, asked: str) -> None:
    with pytest.raises(BadRequest) as refused:
        checked_range(asking(asked), audio)
    assert refused.value.code == "malformed_range"


def test_a_range_past_the_end_is_a_416_with_the_size(audio: Path) -> None:
    refusal = checked_range(asking("bytes=1000-"), audio)
    assert refusal is not None and refusal.status_code == 416
    assert refusal.headers["content-range"] == "bytes */1000"
    assert b'"range_not_satisfiable"' in refusal.body


def test_a_job_is_followed_by_long_polls_that_answer_when_it_changes(tmp_path: Path) -> None:
    """Before: following a job meant asking again every 400 ms (and spending the rate limit);
    now one request is held until the job changes (here: it fails, no composer answering)."""
    settings = GatewaySettings(
        captioner_url="http://127.0.0.1:9",
        composer_url="http://127.0.0.1:9",
        jobs_dir=str(tmp_path / "jobs"),
        job_poll_s=0.05,
    )
    with TestClient(create_app(settings)) as client:
        job = client.post("/jobs", data={"description": "a drone", "duration": "2"}).json()
        started = time.monotonic()
        url = f"/jobs/{job['id']}"
        followed = client.get(url, params={"wait": 20, "after": job["updated_at"]}).json()
        while followed["state"] not in ("failed", "done"):  # each answer is a change
            followed = client.get(url, params={"wait": 20, "after": followed["updated_at"]}).json()
        assert time.monotonic() - started < 15
        assert followed["state"] == "failed"
        assert client.get(url, params={"wait": 31}).status_code == 422  # bounded
