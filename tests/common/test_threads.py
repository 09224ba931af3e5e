"""`run_to_the_end`: a cancelled caller waits for its thread before it goes on."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest

from weavewave_common.threads import run_to_the_end


def slow_write(done: threading.Event) -> str:
    time.sleep(0.3)
    done.set()
    return "written"


@pytest.mark.parametrize("runner", ["anyio", "to_the_end"])
def test_a_cancelled_caller_resumes_only_once_the_thread_is_done(runner: str) -> None:
    async def scenario() -> bool:
        done = threading.Event()
        if runner == "anyio":
            call = anyio.to_thread.run_sync(slow_write, done)
        else:
            call = run_to_the_end(slow_write, done)
        task = asyncio.ensure_future(call)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return done.is_set()  # what the caller would clean up next is no longer being written

    # anyio's own run_sync returns at once under a native cancellation: the reason for this
    assert asyncio.run(scenario()) is (runner == "to_the_end")


def test_the_result_comes_back_when_not_cancelled() -> None:
    assert asyncio.run(run_to_the_end(slow_write, threading.Event())) == "written"
