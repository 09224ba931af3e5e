"""Typed access to what the lifespan holds, for the routes."""

from __future__ import annotations

from typing import Annotated, TypedDict

from fastapi import Depends, Request

from captioner.describe import Describer
from captioner.loader import EngineLoader


class CaptionerState(TypedDict):
    """What the lifespan yields (Starlette copies it into each request's state)."""

    loader: EngineLoader


def get_describer(request: Request) -> Describer:
    loader: EngineLoader = request.state.loader
    return loader.describer()


DescriberDep = Annotated[Describer, Depends(get_describer)]
