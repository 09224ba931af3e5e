"""Blocking work in a worker thread that a cancellation cannot leave half-done behind us.

`anyio.to_thread.run_sync` shields its thread from anyio's own cancel scopes only: a native
asyncio cancellation (a server stopping cancels its tasks) returns at once while the thread runs
on, so whatever the caller then closes (a spool file, a job's audio file) may still be written
to, or a file may appear after its folder was cleaned. `run_to_the_end` waits for the thread
before the cancellation goes on; `complete` does the same for a coroutine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TypeVar, TypeVarTuple

import anyio

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


async def run_to_the_end(func: Callable[[*Ts], T], *args: *Ts) -> T:
    """`func(*args)` in a worker thread; if cancelled meanwhile, the thread is let finish
    (its result or error dropped) before `CancelledError` is raised."""
    return await complete(anyio.to_thread.run_sync(func, *args))


async def complete(work: Awaitable[T]) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile (a database write
    that must not be left in doubt), then let the cancellation go on."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with suppress(Exception):
            await task
        raise
