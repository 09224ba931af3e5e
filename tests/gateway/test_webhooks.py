"""Webhooks go only where they may (no SSRF), to the address that was checked, and drain at
shutdown. Receivers are real HTTP servers on loopback; where a test needs a name to resolve
somewhere a real resolver here cannot send it (a public address, then loopback: DNS
rebinding), the resolver is scripted."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.jobs.destinations import DestinationPolicy, DestinationRefused
from gateway.jobs.model import JobState
from gateway.jobs.store import JobRecord
from gateway.jobs.webhook import Webhooks

ATTACKS = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0177.0.0.1/",  # octal
    "http://0x7f000001/",  # hex
    "http://127.1/",  # short form
    "http://0/",  # 0.0.0.0
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv6-mapped
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/",  # its IPv6 twin
    "http://[fe80::1]/",
    "http://10.0.0.7/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://224.0.0.1/",  # multicast
    "https://user:pw@93.184.216.34/",  # credentials in the URL
    "ftp://93.184.216.34/",
    "http:///no-host",
    "http://no-such-host.invalid/",
    # IPv4 inside IPv6: each names the IPv4 address it carries (before: all passed)
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
    "http://[::ffff:0:127.0.0.1]/",  # IPv4-translated (mapped, with a zero word)
    "http://[64:ff9b::127.0.0.1]/",  # NAT64
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 to the metadata address
    "http://[64:ff9b:1::a00:7]/",  # local-use NAT64
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a00:7::1]/",  # 6to4 of 10.0.0.7
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo
    "http://[fec0::1]/",  # site-local (deprecated, still routed inside some networks)
]


@pytest.mark.parametrize("url", ATTACKS)
def test_private_loopback_and_metadata_destinations_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        asyncio.run(DestinationPolicy([]).check(url))
    assert refused.value.status == 422 and refused.value.code == "webhook_not_allowed"


def test_a_public_address_is_called_at_that_address() -> None:
    policy = DestinationPolicy([])
    destination = asyncio.run(policy.check("https://93.184.216.34:8443/hooks?x=1"))
    assert destination.url == "https://93.184.216.34:8443/hooks?x=1"
    assert destination.host_header == "93.184.216.34:8443"
    v6 = asyncio.run(policy.check("http://[2606:4700:4700::1111]/h"))
    assert v6.url == "http://[2606:4700:4700::1111]/h"


def test_a_public_ipv6_and_public_embedded_ipv4_are_allowed() -> None:
    for address in ("2606:4700::6810:85e5", "64:ff9b::5db8:d822", "2002:5db8:d822::1"):
        policy = DestinationPolicy([], resolve=scripted(address))
        assert asyncio.run(policy.check("http://hooks.example/done")).address == address


def test_an_operator_may_allow_internal_hosts() -> None:
    policy = DestinationPolicy(["127.0.0.1", "Receiver.Internal"], resolve=scripted("10.1.2.3"))
    assert asyncio.run(policy.check("http://receiver.internal:9000/x")).address == "10.1.2.3"
    with pytest.raises(DestinationRefused):
        asyncio.run(policy.check("http://other.internal/x"))


def scripted(*answers: str) -> Any:
    """A resolver that answers each lookup with the next address (the last one repeats)."""
    queue = list(answers)

    async def resolve(host: str, port: int) -> list[str]:
        return [queue.pop(0) if len(queue) > 1 else queue[0]]

    return resolve


@contextmanager
def receiver(status: int = 204, delay_s: float = 0.0, **headers: str) -> Iterator[list[Any]]:
    """A real HTTP server on loopback; yields (port, the requests it got as (path, Host))."""
    got: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["content-length"]))
            got.append((self.path, self.headers.get("host")))
            time.sleep(delay_s)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [server.server_address[1], got]
    finally:
        server.shutdown()


def record(url: str) -> JobRecord:
    now = time.time()
    return JobRecord(
        id="job1",
        kind="compose",
        state=JobState.DONE,
        created=now,
        updated=now,
        fields={},
        webhook_url=url,
    )


async def deliver(url: str, policy: DestinationPolicy, grace_s: float = 10) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        hooks = Webhooks("s3cret", client, policy, attempts=2, retry_base_s=0.05)
        hooks.notify(record(url))
        await hooks.drain(grace_s)


def test_delivery_connects_to_the_checked_address_with_the_name_as_host() -> None:
    with receiver() as (port, got):
        policy = DestinationPolicy(["hooks.example"], resolve=scripted("127.0.0.1"))
        asyncio.run(deliver(f"http://hooks.example:{port}/done", policy))
    assert got == [("/done", f"hooks.example:{port}")]


def test_a_name_that_rebinds_to_loopback_after_the_check_is_not_called() -> None:
    with receiver() as (port, got):
        policy = DestinationPolicy([], resolve=scripted("93.184.216.34", "127.0.0.1"))
        url = f"http://rebind.example:{port}/done"
        asyncio.run(policy.check(url))  # at submission: public
        asyncio.run(deliver(url, policy))  # at delivery: loopback
    assert got == []


def test_redirects_are_not_followed() -> None:
    with receiver() as (inner, inside):
        target = f"http://127.0.0.1:{inner}/internal"
        with receiver(302, Location=target) as (port, got):
            asyncio.run(deliver(f"http://127.0.0.1:{port}/hook", DestinationPolicy(["127.0.0.1"])))
    assert len(got) == 2  # tried twice, never sent on
    assert inside == []


def test_a_receivers_answer_is_never_read_whatever_its_size() -> None:
    """Before: the whole answer was read into memory (a 512 MiB one grew the gateway by
    1.1 GB). Now the delivery takes the status line and hangs up."""
    answer_mib = 256
    sent: list[int] = []

    class Flood(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-length", str(answer_mib << 20))
            self.end_headers()
            written, block = 0, bytes(1 << 20)
            try:
                for _ in range(answer_mib):
                    self.wfile.write(block)
                    written += len(block)
            except OSError:
                pass  # the gateway hung up
            sent.append(written)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flood)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        asyncio.run(deliver(url, DestinationPolicy(["127.0.0.1"])))
        deadline = time.monotonic() + 10
        while not sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    assert sent and sent[0] < (answer_mib << 20) // 4, sent  # one delivery, cut short


def test_shutdown_waits_for_a_delivery_under_way_then_cancels_a_stuck_one() -> None:
    allowed = DestinationPolicy(["127.0.0.1"])
    with receiver(delay_s=0.5) as (port, got):
        asyncio.run(deliver(f"http://127.0.0.1:{port}/slow", allowed, grace_s=5))
        assert len(got) == 1  # finished within the grace, not cut off by the client closing
    with receiver(delay_s=3) as (port, got):
        started = time.monotonic()
        asyncio.run(deliver(f"http://127.0.0.1:{port}/stuck", allowed, grace_s=0.3))
        assert time.monotonic() - started < 2  # cancelled after the grace, cleanly


def test_submitting_a_job_with_an_internal_webhook_is_422() -> None:
    settings = GatewaySettings(
        captioner_url="http://127.0.0.1:9",
        composer_url="http://127.0.0.1:9",
        webhook_secret="s3cret",
        jobs_dir="/tmp/weavewave-test-webhook-jobs",
    )
    with TestClient(create_app(settings)) as client:
        for url in ("http://2130706433:8080/x", "http://[::ffff:169.254.169.254]/"):
            response = client.post("/jobs", data={"description": "x", "webhook_url": url})
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "webhook_not_allowed"
