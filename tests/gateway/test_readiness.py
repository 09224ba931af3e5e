"""The gateway's `/readyz` answers from its replica watcher's last checks while it is ready:
a probe every second must not become a health check of every upstream replica."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import GatewaySettings


class Upstream:
    """A model service that is ready and counts its health checks."""

    def __init__(self) -> None:
        self.checks = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path == "/readyz":
                    upstream.checks += 1
                body = b'{"status": "ready"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    both = (Upstream(), Upstream())
    yield both
    for upstream in both:
        upstream.server.shutdown()


def test_ready_probes_cost_the_upstreams_nothing(
    upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    captioner, composer = upstreams
    settings = GatewaySettings(
        captioner_url=captioner.url,
        composer_url=composer.url,
        replica_check_s=3600,  # the watcher checks once, at start
        jobs_dir=str(tmp_path),
    )
    with TestClient(create_app(settings)) as client:
        at_start = captioner.checks + composer.checks
        for _ in range(20):
            assert client.get("/readyz").status_code == 200
        assert captioner.checks + composer.checks - at_start <= 2
