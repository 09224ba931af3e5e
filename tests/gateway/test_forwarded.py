"""Forwarded client addresses are believed only from the proxies an operator names: a real
gateway process (uvicorn's own handling of X-Forwarded-For), its rate limit keyed by client."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.gateway.processes import gateway

LIMITED = {"GATEWAY_READ_RATE_LIMIT_PER_MINUTE": "2"}
"""Two reads a minute per client: the third from one client is a 429."""


def statuses(url: str) -> list[int]:
    """Three requests, each claiming another client address."""
    return [
        httpx.get(f"{url}/models", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(3)
    ]


def test_a_forwarded_address_is_not_believed_by_default(tmp_path: Path) -> None:
    """Before: uvicorn believed X-Forwarded-For from any loopback peer, so every request with
    a new value got a fresh rate-limit bucket."""
    with gateway(tmp_path, **LIMITED) as gw:
        assert statuses(gw.url) == [200, 200, 429]


def test_a_named_proxy_is_believed(tmp_path: Path) -> None:
    with gateway(tmp_path, GATEWAY_FORWARDED_ALLOW_IPS="127.0.0.1", **LIMITED) as gw:
        assert statuses(gw.url) == [200, 200, 200]
