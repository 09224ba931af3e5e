"""`/healthz` (the process is alive) and `/readyz` (it can do its job now)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from weavewave_common.errors import error_responses


class Health(BaseModel):
    """Liveness or readiness, with a reason when not ready."""

    status: str
    detail: str | None = None


ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns None when ready, or why not."""


def health_router(readiness: ReadinessCheck) -> APIRouter:
    """Routes for orchestrators; `readiness` says why the service cannot serve yet."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get("/readyz", response_model=Health, responses=error_responses(503))
    async def readyz() -> Health | JSONResponse:
        reason = await readiness()
        if reason is None:
            return Health(status="ready")
        body = Health(status="not_ready", detail=reason).model_dump()
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    return router
