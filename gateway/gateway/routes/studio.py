"""The web studio at `/studio/` (and `/` sends you there): a static page that uses the public
API like any other client."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STUDIO = Path(__file__).resolve().parents[1] / "studio"


async def _to_studio() -> RedirectResponse:
    return RedirectResponse("/studio/")


def mount_studio(app: FastAPI) -> None:
    app.mount("/studio", StaticFiles(directory=STUDIO, html=True), name="studio")
    app.add_api_route("/", _to_studio, include_in_schema=False)
