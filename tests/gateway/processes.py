"""A real gateway process for the tests that need uvicorn itself (forwarded headers, a client
that leaves mid-upload): no upstreams (nothing listens at their addresses), alive is enough."""

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
