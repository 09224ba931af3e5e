"""`run_until_disconnect`: the work ends with the request, on every path."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from weavewave_common.cancellation import ClientDisconnected, run_until_disconnect


def request_whose_client(leaves: asyncio.Event) -> Request:
    async def receive() -> dict[str, str]:
        await leaves.wait()
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


class Work:
    """Work that runs until cancelled, and says whether it was."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> str:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "never"


def test_the_work_is_cancelled_when_the_client_leaves() -> None:
    async def scenario() -> bool:
        leaves, work = asyncio.Event(), Work()
        handler = asyncio.ensure_future(run_until_disconnect(request_whose_client(leaves), work()))
        await work.started.wait()
        leaves.set()
        with pytest.raises(ClientDisconnected):
            await handler
        return work.cancelled

    assert asyncio.run(scenario())


def test_the_work_is_cancelled_when_the_handler_is() -> None:
    """A server shutting down (or a timeout around the handler) cancels the handler itself:
    its work (a vLLM request) must not run on for nobody."""

    async def scenario() -> bool:
        work = Work()
        handler = asyncio.ensure_future(
            run_until_disconnect(request_whose_client(asyncio.Event()), work())
        )
        await work.started.wait()
        handler.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handler
        await asyncio.sleep(0)  # the work's cancellation is delivered on its next step
        return work.cancelled  # read now: asyncio.run cancels whatever is left when it ends

    assert asyncio.run(scenario())


def test_the_result_is_returned_when_the_work_ends_first() -> None:
    async def scenario() -> str:
        async def quick() -> str:
            return "brief"

        return await run_until_disconnect(request_whose_client(asyncio.Event()), quick())

    assert asyncio.run(scenario()) == "brief"
