"""Mock upstreams for the clients' tests: one replica per handler (httpx mock transports)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

from gateway.replicas import ReplicaPool

Handler = Callable[[httpx.Request], httpx.Response]


def pool(*handlers: Handler) -> ReplicaPool:
    """One replica per handler, at http://up0, http://up1, ..."""
    by_url = {f"http://up{i}": handler for i, handler in enumerate(handlers)}

    def make(url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(by_url[url]), base_url=url)

    return ReplicaPool("upstream", list(by_url), make)


def envelope(status: int, code: str, retry: str | None = None) -> httpx.Response:
    headers = {"retry-after": retry} if retry else None
    body = {"error": {"code": code, "message": f"{code} happened"}}
    return httpx.Response(status, json=body, headers=headers)


def streamed(chunks: list[bytes], fail: bool = False) -> httpx.Response:
    class Body(httpx.AsyncByteStream):
        closed = False

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
            if fail:
                raise httpx.ReadError("the composer went away")

        async def aclose(self) -> None:
            Body.closed = True

    return httpx.Response(200, stream=Body())
