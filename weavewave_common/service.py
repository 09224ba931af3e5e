"""What every WeaveWave service is made of, built once: the app shell and the process entry.

Each service brings its title, lifespan, readiness check and routes; the shell adds the same
plumbing to all three (the error envelope, /healthz, /readyz, /metrics, the body-size cap and
request ids), and `serve` runs it the same way (JSON logs, uvicorn, graceful shutdown).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from weavewave_common.errors import install_error_handlers
from weavewave_common.health import ReadinessCheck, health_router
from weavewave_common.limits import BodySizeLimitMiddleware
from weavewave_common.logging import configure_logging
from weavewave_common.metrics import install_metrics
from weavewave_common.protocol import AUDIO_MEDIA_TYPES
from weavewave_common.request_id import RequestIdMiddleware


def build_service_app(
    *,
    title: str,
    summary: str,
    lifespan: Callable[[FastAPI], Any],
    readiness: ReadinessCheck,
    routers: list[APIRouter],
    max_request_bytes: int,
) -> FastAPI:
    """A FastAPI app with WeaveWave's shared plumbing; operationId = each route's name."""
    app = FastAPI(
        title=title,
        version="0.1.0",
        summary=summary,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
    )
    install_error_handlers(app)
    app.include_router(health_router(readiness))
    for router in routers:
        app.include_router(router)
    install_metrics(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_request_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


def audio_response(description: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry for a route that streams audio in any of the supported formats."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {
            "description": description,
            "content": dict.fromkeys(AUDIO_MEDIA_TYPES.values(), binary),
        }
    }


KEEP_ALIVE_S = 5
"""How long an idle client connection stays open. Clients that pool connections (the gateway)
must let theirs go sooner, or a request can meet a connection the server is closing."""


def serve(service: str, app: FastAPI, host: str, port: int, log_level: str, log_json: bool) -> None:
    """Configure logs and run `app` with uvicorn until stopped. The app may end the process
    itself with `app.state.stop(code)` (a service that could not start its model): the server
    shuts down cleanly, then the process exits with `code`."""
    configure_logging(service, log_level, log_json)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    exit_code = 0

    def stop(code: int) -> None:
        nonlocal exit_code
        exit_code = code
        server.should_exit = True

    app.state.stop = stop
    server.run()
    if exit_code:
        sys.exit(exit_code)
