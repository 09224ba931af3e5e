"""How long the caller will wait, passed from the gateway to the services behind it.

The gateway sends `X-WeaveWave-Timeout-S` with each upstream call: the seconds it will wait for
the answer (the brief) or for the next bytes (the audio). A service stops work it can no longer
deliver at that point instead of finishing it for nobody, even when no disconnect reaches it
(a proxy in between may keep the connection open). An absent or unreadable value means no
deadline beyond the service's own limits.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request

from weavewave_common.errors import ApiError

TIMEOUT_HEADER = "X-WeaveWave-Timeout-S"

T = TypeVar("T")


class DeadlineExceeded(ApiError):
    """The caller's deadline passed before the answer was ready."""

    status, code = 504, "deadline_exceeded"


def timeout_of(request: Request) -> float | None:
    """The caller's timeout in seconds, if it sent a usable one."""
    raw = request.headers.get(TIMEOUT_HEADER)
    try:
        seconds = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


async def within(seconds: float | None, work: Awaitable[T]) -> T:
    """`work`'s result, or `DeadlineExceeded` (the work cancelled) once `seconds` pass."""
    if seconds is None:
        return await work
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError as exc:
        raise DeadlineExceeded(f"The caller's deadline of {seconds:g} s passed.") from exc


async def idle_bounded(
    items: AsyncIterator[T], seconds: float | None, error: Callable[[], ApiError]
) -> AsyncIterator[T]:
    """`items`, raising `error()` once the next item has not come for `seconds` (None: never)."""
    source = aiter(items)
    while True:
        try:
            async with asyncio.timeout(seconds):
                item = await anext(source)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise error() from exc
        yield item
