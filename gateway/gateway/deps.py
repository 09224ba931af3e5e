"""Typed access to what the lifespan holds, for the routes."""

from __future__ import annotations

from typing import Annotated, TypedDict

from fastapi import Depends, Request

from gateway.capacity import Capacity
from gateway.generate import Generator


class GatewayState(TypedDict):
    generator: Generator
    capacity: Capacity


def get_generator(request: Request) -> Generator:
    generator: Generator = request.state.generator
    return generator


GeneratorDep = Annotated[Generator, Depends(get_generator)]


def get_capacity(request: Request) -> Capacity:
    capacity: Capacity = request.state.capacity
    return capacity


CapacityDep = Annotated[Capacity, Depends(get_capacity)]
