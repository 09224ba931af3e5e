"""50 concurrent generations through the real stack: the gateway serves what it can and turns
the rest away with 429, and nothing it touched is left behind. Correctness only: the figures
are `bench/loadgen.py`'s to print."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import pytest

from bench.loadgen import run_load
from gateway.app import UPSTREAM_POOL
from gateway.config import GatewaySettings
from tests.e2e.conftest import Stack
from tests.e2e.test_pipeline import open_temp_files
from tests.metrics import metric, open_fds, rss_mb, wait_for_metric

pytestmark = pytest.mark.timeout(600)


def test_fifty_at_once_get_music_or_429_and_leak_nothing(stack: Stack) -> None:
    gateway = stack.gateway.process.pid
    assert httpx.post(  # warm every path once, so the baseline includes lazy imports
        f"{stack.gateway.url}/generate", data={"prompt": "warm up", "duration": "1"}, timeout=120
    ).is_success
    rss, fds = rss_mb(gateway), open_fds(gateway)
    # Pooled upstream connections may stay open (up to the pool's keep-alive limit for each of
    # the two upstreams); anything beyond that after 100 requests would be a leak.
    allowance = 2 * (UPSTREAM_POOL.max_keepalive_connections or 0) + 4

    for _ in range(2):
        report = asyncio.run(run_load(stack.gateway.url, requests=50, duration_s=1.0))
        print(report.summary())  # noqa: T201 - the figures, shown by `make test-reliability` (-rA)
        assert set(report.statuses) <= {200, 429}, report.summary()
        # the gateway's whole capacity is served (the stack runs its default), only more is 429
        assert report.statuses[200] >= GatewaySettings().max_concurrent, report.summary()
        for outcome in report.outcomes:
            if outcome.status == 200:
                assert outcome.audio_s == pytest.approx(1.0, abs=0.02)  # whole files only
            else:
                assert outcome.retry_after and int(outcome.retry_after) >= 1
        assert metric(stack.gateway.url, "gateway_requests_in_flight") == 0
        time.sleep(1)  # client connections wind down after the last byte
        assert open_fds(gateway) <= fds + allowance

    assert open_temp_files(stack) == [] and list(stack.gateway_tmp.iterdir()) == []
    assert rss_mb(gateway) < rss + 64
    # (jobs queued by earlier tests, e.g. the contract fuzzing, may still be finishing)
    assert wait_for_metric(stack.composer.url, "composer_active_generations", 0, 120) == 0


def test_the_load_generator_command_runs(stack: Stack) -> None:
    """docs/reliability.md's command for loading a running stack by hand."""
    command = [sys.executable, "bench/loadgen.py", stack.gateway.url, "--requests", "3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert "requests: 3 in" in result.stdout and "200 x" in result.stdout
