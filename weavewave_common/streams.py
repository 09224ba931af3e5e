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
from dataclasses import dataclass

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

Release = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class AudioStream:
    """Audio on its way to a client: the response's media type and headers, the body, and what
    to let go of once it has been sent (an upstream stream, a queued generation, temporary
    files)."""

    media_type: str
    headers: dict[str, str]
    body: AsyncGenerator[bytes]
    release: Release
    """Whoever sends `body` awaits it when done, however it ended (also when `body` never
    started)."""

    async def close(self) -> None:
        """End the body (its own cleanup runs now), then release what it held."""
        try:
            await self.body.aclose()
        finally:
            await self.release()

    def response(self) -> OwnedStreamingResponse:
        """The streamed response that owns this stream (closes and releases it at its end)."""
        return OwnedStreamingResponse(
            self.body, self.release, media_type=self.media_type, headers=self.headers
        )


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
