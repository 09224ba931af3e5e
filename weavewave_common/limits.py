"""A hard cap on request body size, enforced while the body streams in (pure ASGI).

Multipart parsing spools uploads to disk, so memory is safe, but disk and time are not: this
rejects a declared oversize body before reading it, and cuts off one that lies about its length.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weavewave_common.errors import error_json


class BodyTooLarge(HTTPException):
    """Raised inside the app's receive() when the body passes the cap.

    An HTTPException, so that FastAPI's form parser lets it through (it turns other exceptions
    into a generic 400) and the envelope handler renders it as 413.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"Request body is over {max_bytes} bytes.")


class BodySizeLimitMiddleware:
    """Answer 413 with the error envelope when a request body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_json(
            413, "payload_too_large", f"Request body is over {self.max_bytes} bytes."
        )
        await response(scope, receive, send)
