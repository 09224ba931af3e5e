"""Typed access to what the lifespan holds, for the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypedDict

from fastapi import Depends, Request

from gateway.capacity import Capacity
from gateway.generate import Generator
from gateway.jobs.runner import JobRunner
from gateway.jobs.store import JobStore
from gateway.jobs.webhook import Webhooks
from gateway.judge.service import Judge


@dataclass(frozen=True)
class Jobs:
    store: JobStore
    runner: JobRunner
    webhooks: Webhooks | None
    """None when webhooks are off (no secret)."""


class GatewayState(TypedDict):
    generator: Generator
    capacity: Capacity
    jobs: Jobs
    judge: Judge


def get_generator(request: Request) -> Generator:
    generator: Generator = request.state.generator
    return generator


GeneratorDep = Annotated[Generator, Depends(get_generator)]


def get_capacity(request: Request) -> Capacity:
    capacity: Capacity = request.state.capacity
    return capacity


CapacityDep = Annotated[Capacity, Depends(get_capacity)]


def get_jobs(request: Request) -> Jobs:
    jobs: Jobs = request.state.jobs
    return jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]


def get_judge(request: Request) -> Judge:
    judge: Judge = request.state.judge
    return judge


JudgeDep = Annotated[Judge, Depends(get_judge)]
