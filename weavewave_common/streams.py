"""A streamed response that lets go of what it holds however the request ends.

Starlette (ASGI spec 2.3, as uvicorn speaks it) runs a streaming body beside a watcher of the
connection and cancels the body when the client leaves. A client gone before the first byte
cancels a body that has not started, and an unstarted async generator's `finally` never runs:
whatever the body was to release (a queued generation, an upstream stream, a capacity slot)
would be held for nobody. `OwnedStreamingResponse` ties the release to the response's own
call instead, which ends on every path: completed, broken, disconnected, or shut down.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

Release = Callable[[], Awaitable[None]]


class OwnedStreamingResponse(StreamingResponse):
    """`StreamingResponse` over `body` that closes `body`, then awaits `release`, when the
    response ends (`release` must be safe to call after the body's own cleanup ran)."""

    def __init__(
        self,
        body: AsyncGenerator[bytes],
        release: Release,
        media_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(body, media_type=media_type, headers=headers)
        self._body = body
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._body.aclose()
            finally:
                await self._release()
