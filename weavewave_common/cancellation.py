"""Stop work when the client goes away.

Starlette does not cancel a handler whose client disconnected (it only stops streaming
responses), so a brief would still be generated for nobody. `run_until_disconnect` runs the
work beside a watcher of the connection and cancels the work when the client leaves; the
cancellation reaches the engine, which aborts the request (as vLLM's `with_cancellation` does).
Call it only once the request body has been read: the watcher consumes the receive channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from weavewave_common.errors import ApiError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ClientDisconnected(ApiError):
    """The client left before the answer was ready (nobody will see this response)."""

    status, code = 499, "client_disconnected"


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def run_until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """The result of `work`, unless the client disconnects first: then `work` is cancelled.
    So it is when this is cancelled itself (a server shutting down cancels its handlers)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    logger.info("the client went away; its work was cancelled")
    raise ClientDisconnected("The client disconnected.")
