"""Typed access to what the lifespan holds, for the routes."""

from __future__ import annotations

from typing import Annotated, TypedDict

from fastapi import Depends, Request

from gateway.generate import Generator


class GatewayState(TypedDict):
    generator: Generator


def get_generator(request: Request) -> Generator:
    generator: Generator = request.state.generator
    return generator


GeneratorDep = Annotated[Generator, Depends(get_generator)]
