"""The relay (`gateway/relay.py`): every byte passed, the upstream always closed."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from gateway.relay import relay
from tests.gateway.upstreams import streamed


def test_the_relay_passes_every_byte_and_always_closes_the_upstream() -> None:
    async def whole() -> tuple[bytes, bool, int]:
        response = streamed([b"RIFF", b"data", b"more"])
        cleaned: list[int] = []
        body = b"".join([c async for c in relay(response, 0.0, lambda: cleaned.append(1))])
        return body, response.is_closed, len(cleaned)

    assert asyncio.run(whole()) == (b"RIFFdatamore", True, 1)

    async def broken() -> bool:
        response = streamed([b"RIFF"], fail=True)
        with pytest.raises(httpx.ReadError):  # the client's response is cut short, not ended
            async for _ in relay(response, 0.0, lambda: None):
                pass
        return response.is_closed

    assert asyncio.run(broken())

    async def left() -> bool:
        response = streamed([b"a", b"b", b"c"])
        body = relay(response, 0.0, lambda: None)
        await body.__anext__()
        await body.aclose()  # the client went away after one piece
        return response.is_closed

    assert asyncio.run(left())


def test_each_stream_ends_with_one_summary_line(caplog: pytest.LogCaptureFixture) -> None:
    """Before: a finished stream left no line of its own in the log."""

    async def whole() -> None:
        async for _ in relay(streamed([b"RIFF", b"data"]), 0.0, lambda: None):
            pass

    with caplog.at_level(logging.INFO, logger="gateway.relay"):
        asyncio.run(whole())
    (line,) = [r for r in caplog.records if r.name == "gateway.relay"]
    assert line.getMessage().startswith("stream completed: 8 bytes in")
    assert (line.outcome, line.bytes) == ("completed", 8)  # type: ignore[attr-defined]
