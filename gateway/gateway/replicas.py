"""The replicas of one upstream tier, and which one serves the next request.

A Kubernetes Service balances per TCP connection, and the gateway pools keep-alive connections:
through one Service address every call would land on the same pod. So the gateway knows each
replica itself (`GATEWAY_COMPOSER_URLS`, or every address a headless Service name resolves to,
refreshed) and picks one per request by the power of two choices: two healthy replicas at
random, the one with fewer requests outstanding. A replica that fails its health check, or
cannot be reached, is skipped until a check passes again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from gateway import metrics

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str], httpx.AsyncClient]


class NoReplica(Exception):
    """Every replica has been tried for this request (or there are none)."""


@dataclass(eq=False)
class Replica:
    url: str
    client: httpx.AsyncClient
    outstanding: int = 0
    healthy: bool = True
    why: str | None = field(default=None, repr=False)

    def done(self) -> None:
        self.outstanding -= 1


async def readiness_of(client: httpx.AsyncClient) -> str | None:
    """None when the upstream's /readyz says ready, else why not."""
    try:
        response = await client.get("/readyz", timeout=2.0)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    if response.status_code == 200:
        return None
    try:
        return str(response.json().get("detail") or "not ready")
    except ValueError:
        return f"not ready ({response.status_code})"


async def _addresses(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, family=socket.AF_INET, proto=socket.IPPROTO_TCP
    )
    return sorted({str(info[4][0]) for info in infos})


class ReplicaPool:
    """One tier's replicas: `choose` one per attempt, `refresh` their health (and, for names
    that resolve to several addresses when `resolve` is on, the set of replicas itself)."""

    def __init__(
        self,
        tier: str,
        urls: list[str],
        make_client: ClientFactory,
        resolve: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if not urls:
            raise ValueError(f"{tier}: no upstream URL")
        self.tier = tier
        self._urls = urls
        self._make_client = make_client
        self._resolve = resolve
        self._rng = rng or random.Random()
        self.replicas: list[Replica] = [Replica(url, make_client(url)) for url in urls]
        self._retired: list[Replica] = []
        """Replicas no longer resolved, closed once their last request is done."""

    def choose(self, tried: Collection[str] = ()) -> Replica:
        """A replica for the next attempt, not one in `tried`: healthy ones first, the less
        busy of two at random; an unhealthy one only when no healthy one is left."""
        fresh = [r for r in self.replicas if r.url not in tried]
        if not fresh:
            raise NoReplica(self.tier)
        healthy = [r for r in fresh if r.healthy] or fresh
        if len(healthy) == 1:
            return healthy[0]
        a, b = self._rng.sample(healthy, 2)
        return a if a.outstanding <= b.outstanding else b

    def mark_down(self, replica: Replica, why: str) -> None:
        if replica.healthy:
            logger.warning("%s replica %s is down (%s)", self.tier, replica.url, why)
        replica.healthy, replica.why = False, why

    async def refresh(self) -> None:
        """Check every replica's /readyz (and re-resolve names when asked to)."""
        if self._resolve:
            await self._re_resolve()
        reasons = await asyncio.gather(*(readiness_of(r.client) for r in self.replicas))
        for replica, reason in zip(self.replicas, reasons, strict=True):
            if reason is None and not replica.healthy:
                logger.info("%s replica %s is back", self.tier, replica.url)
            replica.healthy, replica.why = reason is None, reason
        metrics.REPLICAS.labels(self.tier).set(len(self.replicas))
        metrics.REPLICAS_READY.labels(self.tier).set(sum(r.healthy for r in self.replicas))

    def readiness(self) -> str | None:
        """None when at least one replica is ready, else why none is."""
        if any(r.healthy for r in self.replicas):
            return None
        return "; ".join(f"{r.url}: {r.why or 'not ready'}" for r in self.replicas)

    async def _re_resolve(self) -> None:
        wanted: list[str] = []
        for url in self._urls:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                addresses = await _addresses(parts.hostname or "", port)
            except OSError as exc:
                logger.warning("%s: %s does not resolve (%s)", self.tier, url, exc)
                addresses = []
            wanted += [urlunsplit(parts._replace(netloc=f"{a}:{port}")) for a in addresses]
        if not wanted:
            return  # keep what we had rather than nothing
        known = {r.url: r for r in self.replicas}
        kept = [
            known.pop(url) if url in known else Replica(url, self._make_client(url))
            for url in dict.fromkeys(wanted)
        ]
        self._retired += known.values()
        self.replicas = kept
        for done in [r for r in self._retired if r.outstanding <= 0]:
            self._retired.remove(done)
            await done.client.aclose()  # nothing of it is streaming any more

    async def watch(self, interval_s: float) -> None:
        """Refresh forever (the app runs it as a task)."""
        while True:
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - a failed round is logged; the next one retries
                logger.exception("%s: refreshing replicas failed", self.tier)
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        for replica in [*self.replicas, *self._retired]:
            await replica.client.aclose()
