"""Request ids: taken from `X-Request-ID` (or made), kept in a contextvar, echoed in the response.

Pure ASGI, so streaming responses pass through untouched (no body buffering), and the id is set
for everything that runs in the request's context: handlers, logs, upstream calls.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


def bind_request_id(value: str) -> None:
    """Tag the current context (e.g. a background task's own) with a request id for its logs."""
    _request_id.set(value)


def new_request_id() -> str:
    return uuid.uuid4().hex


def sanitize_request_id(value: str | None) -> str:
    """Keep a client's id when it is short and printable; otherwise make a new one."""
    if value and _ACCEPTABLE.match(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Set the request id contextvar for each HTTP request and add it to the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = sanitize_request_id(incoming)
        token = _request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
