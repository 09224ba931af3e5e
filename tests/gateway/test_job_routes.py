"""The jobs routes' own rules (`gateway/routes/jobs.py`): a `Range` the finished file cannot
serve is refused in the error envelope, by the rules Starlette's `FileResponse` applies."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import Request

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
