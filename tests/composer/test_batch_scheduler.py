"""The static batch scheduler's rules, in seconds: queue full, cancelled while queued, the
batching window. The backend here is a gate the test opens (a real model cannot be held at a
chosen point); it emits one chunk of silence per row and records the batches it was given."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from composer.generation import BatchSink, GenerationParams, GenerationRequest, Song
from composer.scheduler import BatchScheduler, Ticket
from weavewave_common.errors import ServiceUnavailable


class GatedBackend:
    name, sample_rate, channels, supports_melody, sings = "gated", 32000, 1, False, False
    max_duration_s = None
    audio_uses: tuple[str, ...] = ()
    follows_sections = False

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches: list[list[str]] = []

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        return None

    def samples_for(self, seconds: float) -> int:
        return int(seconds * self.sample_rate)

    def generate(self, batch: list[GenerationRequest], sink: BatchSink) -> None:
        self.batches.append([r.description for r in batch])
        self.gate.wait(10)
        for row in range(len(batch)):
            if not sink.is_cancelled(row):
                sink.emit(row, np.zeros((1, 160), np.float32))


def request(description: str, duration_s: float = 1.0) -> GenerationRequest:
    return GenerationRequest(description, GenerationParams(duration_s=duration_s, seed=1))


async def drained(ticket: Ticket) -> int:
    """How many chunks the ticket's stream gave before it ended."""
    count = 0
    async for _ in ticket.chunks():
        count += 1
    return count


def run(scenario: object) -> None:
    asyncio.run(asyncio.wait_for(scenario, 20))  # type: ignore[arg-type]


def test_a_full_queue_is_503_with_retry_after() -> None:
    async def scenario() -> None:
        backend = GatedBackend()
        scheduler = BatchScheduler(backend, max_batch_size=1, max_wait_s=0, max_queue=2)
        await scheduler.start()
        running = scheduler.submit(request("running"))
        await asyncio.sleep(0.05)  # taken by the model thread, which waits at the gate
        queued = [scheduler.submit(request(f"queued {i}")) for i in range(2)]
        with pytest.raises(ServiceUnavailable) as full:
            scheduler.submit(request("one too many"))
        assert full.value.code == "queue_full" and full.value.retry_after_s
        queued[0].cancel()  # a cancelled ticket no longer takes a place
        scheduler.submit(request("in its place"))
        backend.gate.set()
        assert await drained(running) == 1
        await scheduler.stop()

    run(scenario())


def test_a_request_cancelled_while_queued_never_reaches_the_model() -> None:
    async def scenario() -> None:
        backend = GatedBackend()
        scheduler = BatchScheduler(backend, max_batch_size=1, max_wait_s=0, max_queue=8)
        await scheduler.start()
        first = scheduler.submit(request("first"))
        await asyncio.sleep(0.05)
        gone = scheduler.submit(request("gone"))
        kept = scheduler.submit(request("kept"))
        gone.cancel()
        backend.gate.set()
        assert await drained(first) == 1 and await drained(kept) == 1
        assert backend.batches == [["first"], ["kept"]]
        await scheduler.stop()

    run(scenario())


def test_the_window_gathers_compatible_requests_and_closes_on_time() -> None:
    async def scenario() -> None:
        backend = GatedBackend()
        backend.gate.set()
        scheduler = BatchScheduler(backend, max_batch_size=3, max_wait_s=0.2, max_queue=8)
        await scheduler.start()
        tickets = [scheduler.submit(request("a"))]
        await asyncio.sleep(0.05)  # within the window: joins
        tickets.append(scheduler.submit(request("b")))
        tickets.append(scheduler.submit(request("longer", duration_s=2.0)))  # incompatible
        await asyncio.sleep(0.4)  # the window has closed: a batch of its own
        tickets.append(scheduler.submit(request("late")))
        assert [await drained(t) for t in tickets] == [1, 1, 1, 1]
        assert backend.batches[0] == ["a", "b"]
        assert sorted(map(tuple, backend.batches[1:])) == [("late",), ("longer",)]
        await scheduler.stop()

    run(scenario())


def test_stop_ends_every_waiting_stream() -> None:
    async def scenario() -> None:
        backend = GatedBackend()
        scheduler = BatchScheduler(backend, max_batch_size=1, max_wait_s=0, max_queue=8)
        await scheduler.start()
        running = scheduler.submit(request("running"))
        await asyncio.sleep(0.05)
        queued = scheduler.submit(request("queued"))
        backend.gate.set()
        await scheduler.stop()
        assert running.cancelled and queued.cancelled
        assert backend.batches == [["running"]]  # the queued one never started

    run(scenario())
