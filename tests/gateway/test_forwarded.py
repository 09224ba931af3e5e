"""Forwarded client addresses are believed only from the proxies an operator names: a real
gateway process (uvicorn's own handling of X-Forwarded-For), its rate limit keyed by client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tooling.supervise import RunningService, free_port, run_service


@contextmanager
def gateway(tmp_path: Path, **env: str) -> Iterator[RunningService]:
    port = free_port()
    settings = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_CAPTIONER_URL": "http://127.0.0.1:9",
        "GATEWAY_COMPOSER_URL": "http://127.0.0.1:9",
        "GATEWAY_JOBS_DIR": str(tmp_path / f"jobs-{port}"),
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "2",
        **env,
    }
    with run_service(
        "gateway", settings, tmp_path / f"gw-{port}.log", port, wait_ready=False
    ) as gw:
        deadline = time.monotonic() + 60
        while True:  # not ready without upstreams: alive is enough here
            try:
                if httpx.get(f"{gw.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, gw.log()
            time.sleep(0.2)
        yield gw


def statuses(url: str) -> list[int]:
    """Three requests, each claiming another client address."""
    return [
        httpx.get(f"{url}/models", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(3)
    ]


def test_a_forwarded_address_is_not_believed_by_default(tmp_path: Path) -> None:
    """Before: uvicorn believed X-Forwarded-For from any loopback peer, so every request with
    a new value got a fresh rate-limit bucket."""
    with gateway(tmp_path) as gw:
        assert statuses(gw.url) == [200, 200, 429]


def test_a_named_proxy_is_believed(tmp_path: Path) -> None:
    with gateway(tmp_path, GATEWAY_FORWARDED_ALLOW_IPS="127.0.0.1") as gw:
        assert statuses(gw.url) == [200, 200, 200]
