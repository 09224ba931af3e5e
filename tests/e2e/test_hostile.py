"""The hostile corpus (`tests/hostile_corpus.py`) through the real stack, then the aftermath:
every service healthy, no temporary file left, the gateway's memory back near its baseline.
Also a slow-loris upload and a check that logs carry no uploaded content."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_pipeline import open_temp_files
from tests.hostile_corpus import Case, corpus
from tests.metrics import rss_mb, wait_for_metric
from weavewave_common.protocol import MusicBrief

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]

CASES = corpus()


@pytest.fixture(scope="module")
def baseline(stack: Stack) -> dict[str, float]:
    """Memory before the corpus, after one ordinary request has warmed every code path."""
    warm = httpx.post(f"{stack.gateway.url}/describe", data={"prompt": "warm"}, timeout=120)
    assert warm.status_code == 200
    return {"gateway": rss_mb(stack.gateway.process.pid)}


def send(stack: Stack, case: Case) -> httpx.Response:
    url = f"{stack.gateway.url}{case.path}"
    if case.raw is not None:
        headers = {"content-type": case.content_type or ""}
        return httpx.post(url, content=case.raw, headers=headers, timeout=180)
    return httpx.post(url, data=case.data, files=case.files or None, timeout=180)


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_gets_a_clear_answer(
    stack: Stack, baseline: dict[str, float], case: Case
) -> None:
    response = send(stack, case)
    if case.serve:
        assert response.status_code == 200, (response.status_code, response.text[:300])
    if case.refuse or response.status_code != 200:
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
        error = response.json()["error"]
        assert error["code"] and error["message"]
        assert error["request_id"] == response.headers["x-request-id"]
        assert "Traceback" not in response.text
        return
    brief = MusicBrief.model_validate(response.json())  # served: a music brief, nothing else
    assert brief.description.strip()
    assert "PWNED" not in brief.description and "system prompt" not in brief.description.lower()


def test_everything_is_healthy_and_clean_afterwards(
    stack: Stack, baseline: dict[str, float]
) -> None:
    for service in (stack.gateway, stack.captioner, stack.composer):
        assert httpx.get(f"{service.url}/readyz").status_code == 200
    assert open_temp_files(stack) == [] and list(stack.gateway_tmp.iterdir()) == []
    assert rss_mb(stack.gateway.process.pid) < baseline["gateway"] + 64
    ok = httpx.post(
        f"{stack.gateway.url}/generate", data={"prompt": "after", "duration": "1"}, timeout=120
    )
    assert ok.status_code == 200


def test_a_stalled_upload_gets_408_and_frees_its_slot(stack: Stack) -> None:
    """Slow loris: headers and the start of a body, then nothing (the stack's gateway gives up
    after GATEWAY_UPLOAD_IDLE_TIMEOUT_S=3)."""
    host, port = stack.gateway.url.removeprefix("http://").split(":")
    body_start = b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nslow'
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            b"POST /describe HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n" + body_start
        )
        started = time.monotonic()
        received = b""
        while b"upload_stalled" not in received and (piece := conn.recv(65536)):
            received += piece
        waited = time.monotonic() - started
        answer = received.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert "upload_stalled" in answer
    assert 2.5 <= waited < 15
    assert open_temp_files(stack) == []
    assert wait_for_metric(stack.gateway.url, "gateway_requests_in_flight", 0) == 0


def test_logs_carry_no_uploaded_content_or_prompt(stack: Stack) -> None:
    secret = "zebra-marmalade-7731"
    response = httpx.post(
        f"{stack.gateway.url}/generate",
        data={"prompt": f"music about {secret}", "duration": "1"},
        files=[("images", (f"{secret}.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png"))],
        timeout=120,
    )
    assert response.status_code in (415, 422)  # a broken PNG: the error path logs too
    response = httpx.post(
        f"{stack.gateway.url}/generate",
        data={"prompt": f"music about {secret}", "duration": "1"},
        timeout=120,
    )
    assert response.status_code == 200
    for service in ("gateway", "captioner", "composer"):
        assert secret not in stack.log(service), service
