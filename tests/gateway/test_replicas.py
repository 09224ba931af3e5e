"""The replica pool (`gateway/replicas.py`): two choices by what is outstanding, names that
stand for every address they resolve to."""

from __future__ import annotations

import asyncio

import httpx

from gateway import metrics
from gateway.replicas import ReplicaPool
from tests.gateway.upstreams import pool


def test_two_choices_spread_requests_by_what_is_outstanding() -> None:
    upstream = pool(*(lambda _: httpx.Response(200) for _ in range(3)))
    upstream.replicas[0].outstanding = 5  # a busy replica is chosen only against a busier one
    picks = [upstream.choose().url for _ in range(300)]
    assert picks.count("http://up0") == 0
    assert 100 < picks.count("http://up1") < 200
    upstream.replicas[1].healthy = False  # skipped while unhealthy
    assert {upstream.choose().url for _ in range(50)} == {"http://up2"}
    upstream.replicas[0].outstanding = 0
    assert {upstream.choose().url for _ in range(50)} == {"http://up0", "http://up2"}
    asyncio.run(upstream.aclose())


def test_a_name_stands_for_every_address_it_resolves_to() -> None:
    def make(url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url)

    async def resolved() -> list[str]:
        upstream = ReplicaPool("composer", ["http://localhost:9"], make, resolve=True)
        await upstream.refresh()  # nothing listens on port 9: resolved, then found unhealthy
        urls = [r.url for r in upstream.replicas]
        assert upstream.readiness() is not None
        assert metrics.REPLICAS.labels("composer")._value.get() == 1
        assert metrics.REPLICAS_READY.labels("composer")._value.get() == 0
        await upstream.aclose()
        return urls

    assert asyncio.run(resolved()) == ["http://127.0.0.1:9"]
