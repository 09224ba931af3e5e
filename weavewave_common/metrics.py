"""Prometheus `/metrics`: HTTP request counts and latencies, plus each service's own metrics."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator


def install_metrics(app: FastAPI) -> None:
    """Instrument every route (grouped by route template) and expose `/metrics`."""
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=["/metrics", "/healthz", "/readyz"],
    ).instrument(app).expose(app, include_in_schema=True, tags=["health"])
