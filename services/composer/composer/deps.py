"""Typed access to what the lifespan holds, for the routes."""

from __future__ import annotations

from typing import Annotated, TypedDict

from fastapi import Depends, Request

from composer.compose import Composer
from composer.generation import ModelInfo


class ComposerState(TypedDict):
    composer: Composer
    backend: ModelInfo
    max_duration_s: float
    backend_kind: str


def get_composer(request: Request) -> Composer:
    composer: Composer = request.state.composer
    return composer


ComposerDep = Annotated[Composer, Depends(get_composer)]
