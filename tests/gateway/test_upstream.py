"""The upstream clients (`gateway/upstream.py`): an upstream's errors as the client's, retries,
replicas passed over. Upstreams are httpx mock transports that answer what a real service would
in the case at hand (or fail as no live one can be made to on cue)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.relay import relay
from gateway.upstream import CaptionerClient, ComposerClient
from tests.gateway.upstreams import envelope, pool, streamed
from weavewave_common.errors import (
    ApiError,
    BadGateway,
    ServiceUnavailable,
    TooManyRequests,
)
from weavewave_common.protocol import ComposeFields

A_REQUEST = ComposeFields(description="x")


@pytest.mark.parametrize(
    ("answer", "error", "status", "code"),
    [
        (envelope(422, "empty_request"), ApiError, 422, "empty_request"),  # the user's: passed on
        (envelope(413, "payload_too_large"), ApiError, 413, "payload_too_large"),
        (envelope(503, "busy", "7"), TooManyRequests, 429, "busy"),  # too much work: back off
        (envelope(503, "queue_full"), TooManyRequests, 429, "busy"),
        (
            envelope(500, "internal_error"),
            BadGateway,
            502,
            "upstream_failed",
        ),  # its bug: no details
        (httpx.Response(502, text="<html>proxy</html>"), ServiceUnavailable, 503, None),
        (httpx.Response(418, text="teapot"), ApiError, 418, "upstream_error"),
    ],
)
def test_upstream_errors_become_the_clients_errors(
    answer: httpx.Response, error: type[ApiError], status: int, code: str | None
) -> None:
    async def call() -> None:
        upstream = pool(lambda _: answer)
        try:
            await ComposerClient(upstream, 30).open_stream(
                ComposeFields(description="x"), None, "rid"
            )
        finally:
            await upstream.aclose()

    with pytest.raises(error) as raised:
        asyncio.run(call())
    assert raised.value.status == status
    if code:
        assert raised.value.code == code
    if status == 429:
        assert raised.value.retry_after_s


def test_describe_is_retried_while_the_captioner_loads_and_sends_the_request_id() -> None:
    seen: list[str] = []
    brief = {
        "description": "Warm lofi with mellow piano.",
        "source": "structured",
        "warnings": [],
        "model": "m",
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "attempts": 1},
        "timings": {"decode_s": 0, "generate_s": 0, "total_s": 0},
        "media": {"images": []},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["x-request-id"])
        if len(seen) == 1:
            return envelope(503, "model_loading", "1")
        return httpx.Response(200, json=brief)

    async def call() -> str:
        upstream = pool(answer)
        result = await CaptionerClient(upstream, retries=2, timeout_s=30).describe(
            {"prompt": "x"}, [], "rid"
        )
        await upstream.aclose()
        return result.description

    assert asyncio.run(call()) == "Warm lofi with mellow piano."
    assert seen == ["rid", "rid"]


def test_an_unreachable_upstream_is_503_and_compose_is_never_retried() -> None:
    calls: list[int] = []

    def refuse(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused")

    async def call() -> None:
        upstream = pool(refuse)
        await ComposerClient(upstream, 30).open_stream(A_REQUEST, None, "rid")

    with pytest.raises(ServiceUnavailable) as raised:
        asyncio.run(call())
    assert raised.value.code == "composer_unavailable" and calls == [1]


def test_a_busy_or_unreachable_replica_is_passed_over_for_another() -> None:
    calls: list[str] = []

    def busy(request: httpx.Request) -> httpx.Response:
        calls.append("busy")
        return envelope(503, "queue_full", "2")

    def down(request: httpx.Request) -> httpx.Response:
        calls.append("down")
        raise httpx.ConnectError("refused")

    def serves(request: httpx.Request) -> httpx.Response:
        calls.append("serves")
        return streamed([b"RIFF", b"data"])

    async def call() -> tuple[int, list[int]]:
        upstream = pool(busy, down, serves)
        upstream.replicas[2].outstanding = 10  # the busiest on paper: tried last
        response = await ComposerClient(upstream, 30).open_stream(
            ComposeFields(description="x"), None, "rid"
        )
        busy_now = [r.outstanding for r in upstream.replicas]
        async for _ in relay(response, 0.0, lambda: None):  # the stream ends: the replica is free
            pass
        healthy = [r.healthy for r in upstream.replicas]
        assert [r.outstanding for r in upstream.replicas] == [0, 0, 10]
        await upstream.aclose()
        return response.status_code, busy_now + [int(h) for h in healthy]

    status, state = asyncio.run(call())
    assert status == 200 and calls[-1] == "serves" and sorted(calls) == ["busy", "down", "serves"]
    assert state[:3] == [0, 0, 11]  # only the serving replica counts the open stream
    assert state[3:] == [1, 0, 1]  # the unreachable one is skipped until it checks healthy
