"""What every WeaveWave service is made of, built once: the app shell and the process entry.

Each service brings its title, lifespan, readiness check and routes; the shell adds the same
plumbing to all three (the error envelope, /healthz, /readyz, /metrics, the body-size cap and
request ids), and `serve` runs it the same way (JSON logs, uvicorn, graceful shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import h11
import uvicorn
from fastapi import APIRouter, FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from weavewave_common.draining import Drain, DrainMiddleware
from weavewave_common.errors import install_error_handlers
from weavewave_common.health import ReadinessCheck, health_router
from weavewave_common.limits import BodySizeLimitMiddleware
from weavewave_common.logging import configure_logging
from weavewave_common.metrics import install_metrics
from weavewave_common.protocol import AUDIO_MEDIA_TYPES
from weavewave_common.request_id import RequestIdMiddleware
from weavewave_common.settings import ServiceSettings


def build_service_app(
    *,
    title: str,
    summary: str,
    lifespan: Callable[[FastAPI], Any],
    readiness: ReadinessCheck,
    routers: list[APIRouter],
    max_request_bytes: int,
    degradable: bool = False,
) -> FastAPI:
    """A FastAPI app with WeaveWave's shared plumbing; operationId = each route's name.
    `degradable`: see `health_router`."""
    drain = Drain()

    app = FastAPI(
        title=title,
        version="0.1.0",
        summary=summary,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
    )
    install_error_handlers(app)
    app.state.drain = drain
    app.include_router(health_router(readiness, lambda: drain.draining, degradable))
    for router in routers:
        app.include_router(router)
    install_metrics(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_request_bytes)
    app.add_middleware(DrainMiddleware, drain=drain)
    app.add_middleware(RequestIdMiddleware)
    return app


def audio_response(
    description: str, headers: dict[str, str] | None = None, also: tuple[str, ...] = ()
) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry for a route that streams audio in any of the supported formats (and
    the media types in `also`, e.g. a muxed video); `headers` names the response headers it
    sets, each with what it says."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    response: dict[str, Any] = {
        "description": description,
        "content": dict.fromkeys((*AUDIO_MEDIA_TYPES.values(), *also), binary),
    }
    if headers:
        response["headers"] = {
            name: {"description": meaning, "schema": {"type": "string"}}
            for name, meaning in headers.items()
        }
    return {200: response}


logger = logging.getLogger(__name__)

KEEP_ALIVE_S = 5
"""How long an idle client connection stays open. Clients that pool connections (the gateway)
must let theirs go sooner, or a request can meet a connection the server is closing."""


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for a request's headers: a connection
    whose headers are not complete `header_timeout_s` after it opened (or after its previous
    response) is closed. uvicorn has none: headers dripped a byte every few seconds held a
    connection open for good, and enough of them every socket."""

    header_timeout_s = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the headers are in
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()  # the next request's headers have the same time

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's `http=`, with this deadline."""
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout_s": seconds})


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with SIGTERM/SIGINT draining first (`weavewave_common.draining`)."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._drain = drain
        self._drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain.draining or self._loop is None or self._drain_timeout_s <= 0:
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        self._drain.draining = True
        self._loop.call_soon_threadsafe(self._start_draining)

    def _start_draining(self) -> None:
        self._draining = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        logger.info("draining: %d requests in flight", self._drain.in_flight)
        if not await self._drain.until_idle(self._drain_timeout_s):
            logger.warning(
                "%d requests still running after %g s; stopping anyway",
                self._drain.in_flight,
                self._drain_timeout_s,
            )
        self.should_exit = True


def serve(service: str, app: FastAPI, settings: ServiceSettings) -> None:
    """Configure logs and run `app` with uvicorn until stopped (draining first, for up to
    `drain_timeout_s`). The app may end the process itself with `app.state.stop(code)` (a
    service that could not start its model): the server shuts down cleanly, then the process
    exits with `code`."""
    configure_logging(service, settings.log_level, settings.log_json)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=header_deadline_protocol(settings.header_timeout_s),
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        log_config=None,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = DrainingServer(config, app.state.drain, settings.drain_timeout_s)
    exit_code = 0

    def stop(code: int) -> None:
        nonlocal exit_code
        exit_code = code
        server.should_exit = True

    app.state.stop = stop
    server.run()
    if exit_code:
        sys.exit(exit_code)
