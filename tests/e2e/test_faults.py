"""Upstreams that vanish, crash or hang, at each stage of a request, with real processes: the
client gets a clear error or a visibly cut response (never a silently short file), and the
gateway serves again as soon as the upstream is back, without a restart of its own.

Hangs are real too: the upstream process is frozen with SIGSTOP and thawed with SIGCONT.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from tests.e2e.conftest import Stack, venv_python
from tests.media_factory import image_bytes, video_bytes
from tests.metrics import metric, still_for
from tooling.supervise import RunningService, free_port, run_service

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

SHORT_TIMEOUT_S = 3


def start_gateway(
    stack: Stack, name: str, env: dict[str, str], wait_ready: bool = True
) -> Iterator[RunningService]:
    port = free_port()
    full_env = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_CAPTIONER_URL": stack.captioner.url,
        "GATEWAY_COMPOSER_URL": stack.composer.url,
        **env,
    }
    with run_service(
        "gateway",
        full_env,
        stack.logs / f"{name}.log",
        port,
        wait_ready=wait_ready,
        python=venv_python("gateway"),
    ) as gateway:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # up, though maybe not ready (an upstream is away)
            try:
                if httpx.get(f"{gateway.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield gateway


@pytest.fixture
def impatient_gateway(stack: Stack) -> Iterator[RunningService]:
    """A second gateway in front of the same upstreams that waits only a few seconds."""
    yield from start_gateway(
        stack,
        "gateway-impatient",
        {
            "GATEWAY_DESCRIBE_TIMEOUT_S": str(SHORT_TIMEOUT_S),
            "GATEWAY_COMPOSE_TIMEOUT_S": str(SHORT_TIMEOUT_S),
        },
    )


@pytest.fixture
def frozen() -> Iterator[list[int]]:
    """pids to SIGSTOP; each is thawed at the end whatever happens."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def test_an_absent_captioner_is_503_and_compose_still_works(stack: Stack) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for gateway in start_gateway(
        stack, "gateway-no-captioner", {"GATEWAY_CAPTIONER_URL": nowhere}, wait_ready=False
    ):
        response = httpx.post(f"{gateway.url}/generate", data={"prompt": "x"}, timeout=60)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "captioner_unavailable"
        assert response.headers["retry-after"]
        assert httpx.get(f"{gateway.url}/readyz").status_code == 503
        composed = httpx.post(
            f"{gateway.url}/compose", data={"description": "x", "duration": "1"}, timeout=60
        )
        assert composed.status_code == 200


def test_a_hung_captioner_is_504_at_the_deadline_then_served_again(
    stack: Stack, impatient_gateway: RunningService, frozen: list[int]
) -> None:
    frozen.append(stack.captioner.process.pid)
    os.kill(stack.captioner.process.pid, signal.SIGSTOP)
    started = time.monotonic()
    response = httpx.post(f"{impatient_gateway.url}/describe", data={"prompt": "x"}, timeout=60)
    waited = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert SHORT_TIMEOUT_S - 0.5 <= waited < SHORT_TIMEOUT_S + 5
    os.kill(stack.captioner.process.pid, signal.SIGCONT)
    again = httpx.post(f"{impatient_gateway.url}/describe", data={"prompt": "x"}, timeout=120)
    assert again.status_code == 200


def test_a_composer_that_hangs_mid_stream_cuts_the_response(
    stack: Stack, impatient_gateway: RunningService, frozen: list[int]
) -> None:
    data = {"description": "long drone", "duration": "30"}
    received = 0
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        httpx.stream("POST", f"{impatient_gateway.url}/compose", data=data, timeout=60) as stream,
    ):
        for piece in stream.iter_raw():
            received += len(piece)
            if not frozen:
                frozen.append(stack.composer.process.pid)
                os.kill(stack.composer.process.pid, signal.SIGSTOP)
    assert 0 < received < 44 + 30 * 32000 * 2  # the WAV never reached its announced length
    os.kill(stack.composer.process.pid, signal.SIGCONT)
    # thawed, the composer sees the gateway gone and stops generating
    assert still_for(partial(metric, stack.composer.url, "composer_generation_steps_total"))
    served = httpx.post(f"{impatient_gateway.url}/compose", data={**data, "duration": "1"})
    assert served.status_code == 200
    assert "stream broke" in stack.log("gateway-impatient")


def test_a_composer_crash_mid_stream_cuts_the_response_and_is_logged(stack: Stack) -> None:
    data = {"description": "long drone", "duration": "30"}
    headers = {"X-Request-ID": "crash-mid-stream-7"}
    received = 0
    try:
        with (
            pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
            httpx.stream(
                "POST", f"{stack.gateway.url}/compose", data=data, headers=headers, timeout=60
            ) as stream,
        ):
            for piece in stream.iter_raw():
                received += len(piece)
                if stack.composer.process.poll() is None:
                    stack.stop("composer", signal.SIGKILL)
    finally:
        if stack.composer.process.poll() is not None:
            stack.start("composer")
    assert 0 < received < 44 + 30 * 32000 * 2
    broke = [
        line
        for line in stack.log("gateway").splitlines()
        if "crash-mid-stream-7" in line and "stream broke" in line
    ]
    assert broke, "the gateway did not log the cut stream with its request id"
    served = httpx.post(f"{stack.gateway.url}/compose", data={**data, "duration": "1"}, timeout=120)
    assert served.status_code == 200


def test_a_captioner_crash_during_the_brief_is_503_then_served_again(stack: Stack) -> None:
    answers: list[httpx.Response] = []
    files = [  # a second or more of work: time to see the brief under way
        ("images", ("sunset.png", image_bytes(320, 240), "image/png")),
        ("video", ("v.mp4", video_bytes(seconds=4, fps=10), "video/mp4")),
    ]

    def ask() -> None:
        answers.append(
            httpx.post(
                f"{stack.gateway.url}/generate",
                data={"prompt": "x", "duration": "1"},
                files=files,
                timeout=120,
            )
        )

    asker = threading.Thread(target=ask)
    try:
        asker.start()
        deadline = time.monotonic() + 30
        while metric(stack.captioner.url, "captioner_requests_in_flight") < 1:
            assert asker.is_alive(), f"the brief ended before it was seen: {answers}"
            assert time.monotonic() < deadline, "the brief never started"
            time.sleep(0.02)
        stack.stop("captioner", signal.SIGKILL)
        asker.join(timeout=60)
    finally:
        if stack.captioner.process.poll() is not None:
            stack.start("captioner")
    (response,) = answers
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "captioner_unavailable"
    served = httpx.post(
        f"{stack.gateway.url}/generate", data={"prompt": "x", "duration": "1"}, timeout=120
    )
    assert served.status_code == 200
