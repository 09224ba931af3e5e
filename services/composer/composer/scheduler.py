"""BatchScheduler: one queue, one model thread; requests arriving together share a batch.
`Lanes`: two of them over one model, long requests apart from short ones.

The static scheduler serves the audiocraft backend, whose token loop runs a whole batch at
once; the transformers backend is served by the continuous-batching engine instead.

`submit` never blocks: it queues the request (or refuses it when the queue is full) and returns
a `Ticket` whose chunk queue the caller drains. The worker takes the oldest request, waits up to
`max_wait_s` for compatible ones (same guidance and batch group; melody rows with melody rows) until
`max_batch_size`, and runs the batch in the model thread. The thread hands chunks to the event
loop with `call_soon_threadsafe`; a ticket cancelled by its caller stops receiving audio at once
and the backend sees it between steps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol

import anyio
import numpy as np
import numpy.typing as npt

from composer import metrics
from composer.generation import GenerationRequest, MusicBackend
from weavewave_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

END = None
"""Put on a ticket's queue after its last chunk."""


class Scheduler(Protocol):
    """What the composer needs from whatever runs the model: the static `BatchScheduler`
    (audiocraft) or the continuous-batching engine (`composer.engine.runner`)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def submit(self, request: GenerationRequest) -> Ticket:
        """Queue a request (never blocks); 503 with `Retry-After` when the queue is full."""


class Ticket:
    """One request's place in the scheduler and its stream of audio chunks [C, N]."""

    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.cancelled = False
        self.queue: asyncio.Queue[npt.NDArray[np.float32] | BaseException | None] = asyncio.Queue()

    def cancel(self) -> None:
        """Stop generating for this request (read by the model thread between steps)."""
        self.cancelled = True

    async def chunks(self) -> AsyncIterator[npt.NDArray[np.float32]]:
        """Audio as it is generated; raises if generation failed."""
        while True:
            item = await self.queue.get()
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def compatible(a: GenerationRequest, b: GenerationRequest) -> bool:
    """Whether two requests can share one batch without changing each other's audio: one
    guidance scale (and text guidance), batch group and duration, melody or not. The duration
    because audiocraft's token loop feeds a row's delay-pattern padding only where the whole
    batch ends: a shorter row's last frames would hear tokens past its end and differ from its
    solo run."""
    return (
        a.params.guidance == b.params.guidance
        and a.params.text_guidance == b.params.text_guidance
        and a.batch_group == b.batch_group
        and a.params.duration_s == b.params.duration_s
        and (a.melody is None) == (b.melody is None)
    )


class _Sink:
    """Runs in the model thread; forwards to the tickets on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tickets: list[Ticket]) -> None:
        self._loop = loop
        self._tickets = tickets

    def emit(self, row: int, samples: npt.NDArray[np.float32]) -> None:
        ticket = self._tickets[row]
        if not ticket.cancelled:
            self._loop.call_soon_threadsafe(ticket.queue.put_nowait, samples)

    def is_cancelled(self, row: int) -> bool:
        return self._tickets[row].cancelled

    def progress(self, step: int, total: int) -> None:
        metrics.STEPS.inc()


class BatchScheduler:
    """Queue -> batch -> model thread -> per-request chunk queues."""

    def __init__(
        self, backend: MusicBackend, max_batch_size: int, max_wait_s: float, max_queue: int
    ) -> None:
        self._backend = backend
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._max_queue = max_queue
        self._pending: deque[Ticket] = deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._worker: asyncio.Task[None] | None = None
        self._running: list[Ticket] = []

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="batch-scheduler")

    async def stop(self) -> None:
        """Cancel what is queued, let the running batch see its tickets cancelled, stop."""
        for ticket in [*self._pending, *self._running]:
            ticket.cancel()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        # the model thread may be inside a batch: wait for it off the event loop
        await anyio.to_thread.run_sync(
            partial(self._executor.shutdown, wait=True, cancel_futures=True)
        )

    def submit(self, request: GenerationRequest) -> Ticket:
        """Queue a request; 503 with `Retry-After` when the queue is full."""
        waiting = sum(1 for t in self._pending if not t.cancelled)
        if waiting >= self._max_queue:
            raise ServiceUnavailable(
                "The composer's queue is full; retry shortly.", code="queue_full", retry_after_s=5
            )
        ticket = Ticket(request)
        self._pending.append(ticket)
        metrics.QUEUE_DEPTH.set(len(self._pending))
        self._arrived.set()
        return ticket

    async def _next_batch(self) -> list[Ticket]:
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        first = self._pending.popleft()
        batch = [first]
        deadline = time.monotonic() + self._max_wait_s
        while len(batch) < self._max_batch_size:
            for ticket in list(self._pending):
                if len(batch) < self._max_batch_size and compatible(first.request, ticket.request):
                    self._pending.remove(ticket)
                    batch.append(ticket)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(batch) >= self._max_batch_size:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=remaining)
            except TimeoutError:
                break
        metrics.QUEUE_DEPTH.set(len(self._pending))
        return [t for t in batch if not t.cancelled]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            metrics.BATCHES.inc()
            metrics.BATCH_SIZE.observe(len(batch))
            requests = [t.request for t in batch]
            self._running = batch
            try:
                await loop.run_in_executor(
                    self._executor, self._backend.generate, requests, _Sink(loop, batch)
                )
            except Exception as exc:  # noqa: BLE001 - every waiting request learns of it
                logger.exception("generation failed for a batch of %d", len(batch))
                for ticket in batch:
                    ticket.queue.put_nowait(exc)
                continue
            finally:
                self._running = []
            for ticket in batch:
                ticket.queue.put_nowait(END)


class Lanes:
    """Two batch schedulers, two model threads, one model's weights: requests of at least
    `long_from_s` seconds go to the long lane, the rest to the short one. A diffusion batch
    runs to its end once started, and a 600 s song takes many times a short clip's time: on
    one lane every short request behind it waits for all of it. On two, the short lane goes on
    while the long one works (on a GPU their kernels interleave on the device; on the CPU they
    share the cores). Each lane's backend has its own pipeline state (scheduler, tokenizers)
    over the same modules (`PipelineBackend.sibling`)."""

    def __init__(self, short: BatchScheduler, long: BatchScheduler, long_from_s: float) -> None:
        self._short = short
        self._long = long
        self._long_from_s = long_from_s

    async def start(self) -> None:
        await self._short.start()
        await self._long.start()

    async def stop(self) -> None:
        await self._short.stop()
        await self._long.stop()

    def submit(self, request: GenerationRequest) -> Ticket:
        long = request.params.duration_s >= self._long_from_s
        return (self._long if long else self._short).submit(request)
