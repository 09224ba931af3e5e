"""`/healthz` (the process is alive) and `/readyz` (it can do its job now)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from weavewave_common.errors import error_responses


class Health(BaseModel):
    """Liveness or readiness, with a reason when not ready."""

    status: str
    """`ok` (alive), `ready`, `degraded` (serving, something behind it down) or `not_ready`."""
    detail: str | None = None


ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns None when ready, or why not."""


DEGRADED_DESCRIPTION = (
    "`ok`: answer 200 `degraded` (with why) while the service serves some of its routes, "
    "e.g. for an orchestrator that must keep it reachable while one tier behind it restarts."
)


def health_router(
    readiness: ReadinessCheck,
    draining: Callable[[], bool] = lambda: False,
    degradable: bool = False,
) -> APIRouter:
    """Routes for orchestrators; `readiness` says why the service cannot serve yet. A
    `degradable` service (one that serves some routes while a dependency is down) answers
    `/readyz?degraded=ok` with 200 `degraded` then; never while `draining`."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok")

    async def answer(degraded_ok: bool) -> Health | JSONResponse:
        if draining():
            reason: str | None = "shutting down"
        else:
            reason = await readiness()
        if reason is None:
            return Health(status="ready")
        if degraded_ok and not draining():
            return Health(status="degraded", detail=reason)
        body = Health(status="not_ready", detail=reason).model_dump()
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    if degradable:

        @router.get("/readyz", response_model=Health, responses=error_responses(503))
        async def readyz_degradable(
            degraded: Literal["ok"] | None = Query(None, description=DEGRADED_DESCRIPTION),
        ) -> Health | JSONResponse:
            return await answer(degraded == "ok")

    else:

        @router.get("/readyz", response_model=Health, responses=error_responses(503))
        async def readyz() -> Health | JSONResponse:
            return await answer(False)

    return router
