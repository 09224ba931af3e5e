"""A client that leaves mid-upload is its own doing: a real gateway process counts it as a
499 (client closed the request) in `/metrics`, never as a server error."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.gateway.processes import gateway


def leave_mid_upload(url: str) -> None:
    """Announce a 1 MB multipart upload, send a little of it, and hang up."""
    parts = urlsplit(url)
    head = (
        "POST /generate HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {1 << 20}\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="video"; filename="v.mp4"\r\n\r\n'
    )
    with socket.create_connection((parts.hostname, parts.port)) as connection:
        connection.sendall(head.encode() + bytes(4096))
        time.sleep(0.2)


def generate_statuses(url: str) -> dict[str, float]:
    page = httpx.get(f"{url}/metrics").text
    found = re.findall(
        r'^http_requests_total\{handler="/generate",method="POST",status="(\d+)"\} (\S+)$',
        page,
        re.MULTILINE,
    )
    return {status: float(count) for status, count in found}


def test_a_client_that_leaves_mid_upload_is_a_499_not_a_server_error(tmp_path: Path) -> None:
    """Before: every such request was counted as a 500 (20 of 20)."""
    with gateway(tmp_path) as gw:
        for _ in range(3):
            leave_mid_upload(gw.url)
        deadline = time.monotonic() + 10
        while sum(generate_statuses(gw.url).values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert generate_statuses(gw.url) == {"499": 3.0}, gw.log()[-2000:]


def test_headers_dripped_a_byte_at_a_time_are_cut_off(tmp_path: Path) -> None:
    """Before: ten connections sending their headers a byte every 5 s were all still open
    after 65 s (uvicorn has no deadline for headers)."""
    with gateway(tmp_path, GATEWAY_HEADER_TIMEOUT_S="1.5") as gw:
        parts = urlsplit(gw.url)
        request = f"GET /healthz HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Slow: " + "x" * 100
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
            started = time.monotonic()
            closed = False
            for byte in request.encode():
                try:
                    connection.sendall(bytes([byte]))
                    connection.settimeout(0.3)
                    closed = connection.recv(1024) == b""
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
                if closed:
                    break
            held = time.monotonic() - started
        assert closed and held < 5, held
        assert httpx.get(f"{gw.url}/healthz").status_code == 200  # whole requests still served
