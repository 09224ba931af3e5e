"""The gateway spreads requests over each tier's replicas and loses none to a dead one.

A second captioner and a second composer join the stack's on loopback; a gateway knows both of
each (`GATEWAY_*_URLS`). Forty requests per tier must spread (neither replica under 30 %); once
a composer is killed, every request that had not started streaming is still served.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.conftest import Stack, venv_python
from tests.metrics import total
from tooling.supervise import RunningService, free_port, run_service

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]


@dataclass
class Replicated:
    gateway: RunningService
    captioners: list[RunningService]
    composers: list[RunningService]


@pytest.fixture(scope="module")
def replicated(stack: Stack) -> Iterator[Replicated]:
    with ExitStack() as exits:
        extra = {}
        for tier in ("captioner", "composer"):
            port = free_port()
            env = {**stack._envs[tier], f"{tier.upper()}_PORT": str(port)}
            extra[tier] = exits.enter_context(
                run_service(tier, env, stack.logs / f"{tier}-2.log", port, python=venv_python(tier))
            )
        # warmed like the stack's: a fresh engine's first requests are slower, and the choice
        # is by requests outstanding (a slower replica rightly gets fewer)
        for _ in range(3):
            httpx.post(
                f"{extra['captioner'].url}/v1/describe", data={"prompt": "warm"}, timeout=120
            )
            httpx.post(
                f"{extra['composer'].url}/v1/compose", data={"description": "warm"}, timeout=120
            )
        captioners = [stack.captioner, extra["captioner"]]
        composers = [stack.composer, extra["composer"]]
        port = free_port()
        env = {
            "GATEWAY_PORT": str(port),
            "GATEWAY_CAPTIONER_URLS": ",".join(s.url for s in captioners),
            "GATEWAY_COMPOSER_URLS": ",".join(s.url for s in composers),
            "GATEWAY_MAX_DURATION_S": "30",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "10000",
            "GATEWAY_READ_RATE_LIMIT_PER_MINUTE": "100000",
            "GATEWAY_REPLICA_CHECK_S": "0.5",
            "GATEWAY_JOBS_DIR": str(stack.logs / "replica-jobs"),
        }
        gateway = exits.enter_context(
            run_service(
                "gateway",
                env,
                stack.logs / "gateway-replicas.log",
                port,
                python=venv_python("gateway"),
            )
        )
        yield Replicated(gateway, captioners, composers)


def counts(services: list[RunningService], name: str) -> list[float]:
    return [total(httpx.get(f"{s.url}/metrics").text, name) for s in services]


async def send(gateway: str, path: str, forms: list[dict[str, str]], wave: int = 2) -> list[int]:
    """The forms in waves of `wave` at once. Two at a time, the choice by requests outstanding
    sends one to each replica whatever their speeds (on these 2 shared cores one replica can
    run several times slower than the other: a steady stream would rightly favour the other)."""
    async with httpx.AsyncClient(base_url=gateway, timeout=240) as client:

        async def one(form: dict[str, str]) -> int:
            response = await client.post(path, data=form)
            await response.aread()
            return response.status_code

        statuses: list[int] = []
        for start in range(0, len(forms), wave):
            batch = forms[start : start + wave]
            statuses += await asyncio.gather(*(one(form) for form in batch))
        return statuses


def spread(before: list[float], after: list[float], requests: int) -> list[float]:
    served = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(served) == requests, served
    return [s / requests for s in served]


def test_requests_spread_over_the_composers(replicated: Replicated) -> None:
    before = counts(replicated.composers, "composer_requests_total")
    forms = [{"description": f"tune {i}", "duration": "1", "seed": str(i)} for i in range(40)]
    assert asyncio.run(send(replicated.gateway.url, "/compose", forms)) == [200] * 40
    after = counts(replicated.composers, "composer_requests_total")
    shares = spread(before, after, 40)
    assert min(shares) >= 0.3, shares


def test_briefs_spread_over_the_captioners(replicated: Replicated) -> None:
    before = counts(replicated.captioners, "captioner_briefs_total")
    forms = [{"prompt": f"a song about the number {i}"} for i in range(40)]
    assert asyncio.run(send(replicated.gateway.url, "/describe", forms)) == [200] * 40
    after = counts(replicated.captioners, "captioner_briefs_total")
    shares = spread(before, after, 40)
    assert min(shares) >= 0.3, shares


def test_a_dead_composer_loses_no_request_that_had_not_started(replicated: Replicated) -> None:
    dead = replicated.composers[1]
    dead.process.send_signal(signal.SIGKILL)
    dead.process.wait(timeout=30)
    forms = [{"description": f"after {i}", "duration": "1"} for i in range(12)]
    assert asyncio.run(send(replicated.gateway.url, "/compose", forms, wave=4)) == [200] * 12
    ready = httpx.get(f"{replicated.gateway.url}/readyz", timeout=10)
    assert ready.status_code == 200  # one composer is enough to be ready
