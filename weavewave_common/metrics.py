"""Prometheus `/metrics`: HTTP request counts and latencies, plus each service's own metrics.

Every label value is bounded: paths are grouped by route template (unknown ones as `none`), and
a request whose method is not an HTTP method the services speak is answered 405 before it is
counted, so a client cannot grow the page by making up methods.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp, Receive, Scope, Send

from weavewave_common.errors import error_json

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class KnownMethodsMiddleware:
    """Answer 405 with the error envelope for a method outside `KNOWN_METHODS` (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in KNOWN_METHODS:
            response = error_json(405, "method_not_allowed", "Unknown HTTP method.")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_metrics(app: FastAPI) -> None:
    """Instrument every route (grouped by route template) and expose `/metrics`; unknown
    methods are refused outside the instrumentation."""
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=["/metrics", "/healthz", "/readyz"],
    ).instrument(app).expose(app, include_in_schema=True, tags=["health"])
    app.add_middleware(KnownMethodsMiddleware)
