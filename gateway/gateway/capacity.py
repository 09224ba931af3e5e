"""How many requests the gateway works on at once; one more gets 429 instead of piling up.

A slot is held from the first byte of the upload to the last byte of the audio, so slow uploads
and long streams count too: the bound is on everything a request ties up (sockets, temporary
files, an upstream's queue place). Upstreams have their own queues; this keeps the gateway from
accepting more than they could ever serve.
"""

from __future__ import annotations

from gateway import metrics
from weavewave_common.errors import TooManyRequests


class Slot:
    """One request's place; `release` is idempotent (every exit path may call it)."""

    def __init__(self, capacity: Capacity) -> None:
        self._capacity: Capacity | None = capacity

    def release(self) -> None:
        if self._capacity is not None:
            self._capacity._release()
            self._capacity = None


class Capacity:
    def __init__(self, limit: int, retry_after_s: int = 2) -> None:
        self._limit = limit
        self._retry_after_s = retry_after_s
        self._in_flight = 0

    def take(self) -> Slot:
        """A slot, or 429 with `Retry-After` when every slot is taken."""
        if self._in_flight >= self._limit:
            metrics.REJECTED.inc()
            raise TooManyRequests(
                "WeaveWave is at capacity; retry shortly.",
                code="at_capacity",
                retry_after_s=self._retry_after_s,
            )
        self._in_flight += 1
        metrics.IN_FLIGHT.set(self._in_flight)
        return Slot(self)

    def _release(self) -> None:
        self._in_flight -= 1
        metrics.IN_FLIGHT.set(self._in_flight)
