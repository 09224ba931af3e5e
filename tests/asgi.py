"""Drive an app at the ASGI level as a client that leaves right after its last byte.

Over a socket, whether such a client's disconnect lands before or after the app has read the
body is a race. Here the order is the one uvicorn delivers when it is lost: the whole body, then
`http.disconnect` for every later `receive`, so the app has accepted the request and the client
is gone before the response's first byte. `send` yields to the loop, as uvicorn's does while a
client's socket is not being read (write flow control): Starlette's disconnect watcher then
cancels the response before its body has started.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from functools import partial
from typing import Any

import httpx
from fastapi.testclient import TestClient

Message = MutableMapping[str, Any]


def _scope(request: httpx.Request, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},  # what uvicorn reports
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.url.path,
        "raw_path": request.url.raw_path.split(b"?")[0],
        "query_string": request.url.query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
        "state": dict(state),
    }


async def leave_after_request(
    client: TestClient, path: str, data: dict[str, str], files: Any = None, patience: int = 0
) -> list[Message]:
    """POST a form to the app `client` has started (its lifespan state) and be gone before
    any answer; returns what the app sent. Run it on the app's loop: `client.portal.call`.

    `patience`: how many watches of the connection after the body (`receive` calls) see the
    client still there (they wait until the app stops watching) before it is gone. The
    gateway watches while it opens its upstreams: with 1 the client leaves just after that,
    with the composer's stream open and not a byte relayed."""
    request = httpx.Request("POST", f"http://127.0.0.1{path}", data=data, files=files)
    body = request.read()
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    watches = 0

    async def receive() -> Message:
        nonlocal watches
        if pending:
            return pending.pop(0)
        watches += 1
        if watches <= patience:
            await asyncio.Event().wait()  # still connected; the app cancels this watch
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        await asyncio.sleep(0)  # as uvicorn's does while the socket's write buffer is full

    await client.app(_scope(request, client.app_state), receive, send)
    return sent


def refused(sent: list[Message]) -> int | None:
    """The status of an error answer the app began, if it began one (None: none, or 200)."""
    starts = [m["status"] for m in sent if m["type"] == "http.response.start"]
    return next((status for status in starts if status != 200), None)


def post_and_leave(
    client: TestClient, path: str, data: dict[str, str], patience: int = 0
) -> list[Message]:
    """`leave_after_request` on the loop of the app `client` has started (in a `with`)."""
    assert client.portal is not None, "start the app first: `with TestClient(app) as client`"
    return client.portal.call(partial(leave_after_request, client, path, data, patience=patience))
