"""Stopping without cutting anyone off: SIGTERM drains the service before it exits.

An orchestrator sends SIGTERM and keeps routing new requests for a moment (until its endpoints
catch up). So the first SIGTERM does not stop the server: `/readyz` turns false at once, new
requests get 503 with `Retry-After` (another replica takes them), requests already under way
(an audio stream) run to their end, for up to the drain timeout; then the server stops as
uvicorn always does. A second signal stops it at once.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from weavewave_common.errors import error_json

logger = logging.getLogger(__name__)

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_S = 2


class Drain:
    """Whether the service is draining, and how many requests it still serves."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._changed = asyncio.Event()

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        self._changed.set()

    async def until_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight (True) or `timeout_s` passes (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.in_flight > 0:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.5))
            except TimeoutError:
                pass
        return True


class DrainMiddleware:
    """Counts the requests in flight and refuses new ones (503) once draining began; health
    and metrics stay open so the orchestrator sees the state."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            refusal = error_json(
                503,
                "shutting_down",
                "This instance is shutting down; retry (another one will answer).",
                retry_after_s=RETRY_AFTER_S,
            )
            refusal.headers["Connection"] = "close"
            await refusal(scope, receive, send)
            return
        self.drain.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.leave()
