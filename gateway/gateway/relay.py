"""Relay an upstream's streamed body to the client, and always let go of the upstream.

Starlette skips background tasks when a stream fails, so cleanup lives in the generator's
`finally`: the upstream response is closed (the composer sees the disconnect and stops) and the
request's temporary files are removed, whether the stream completed, broke, or the client left.
A broken upstream stream is re-raised so the client's response is cut short, never silently
short.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable

import httpx

from gateway import metrics

logger = logging.getLogger(__name__)


async def relay(
    response: httpx.Response, started: float, cleanup: Callable[[], None]
) -> AsyncGenerator[bytes]:
    first: float | None = None
    outcome = "broken"
    sent = 0
    try:
        async for chunk in response.aiter_raw():
            if first is None:
                first = time.perf_counter() - started
            sent += len(chunk)
            yield chunk
        outcome = "completed"
    except (asyncio.CancelledError, GeneratorExit):
        outcome = "client_left"
        raise
    except httpx.HTTPError as exc:
        logger.error("the composer's stream broke (%s); cutting the response short", exc)
        raise
    finally:
        await response.aclose()
        cleanup()
        if first is not None:
            metrics.FIRST_AUDIO.observe(first)
        metrics.STREAMS.labels(outcome).inc()
        logger.info(  # one line per stream: what a person reading the log wants to know
            "stream %s: %d bytes in %.2f s, first audio after %s",
            outcome,
            sent,
            time.perf_counter() - started,
            f"{first:.2f} s" if first is not None else "none",
            extra={"outcome": outcome, "bytes": sent},
        )
