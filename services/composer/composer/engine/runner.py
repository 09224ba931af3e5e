"""The engine's model thread and its asyncio side: tickets in, audio chunks out.

`submit` never blocks: it queues the request (503 with `Retry-After` when the queue is full) and
starts working out its condition (text encoding; a melody's stems and chroma) on a second thread,
off the step loop's critical path. The model thread loops: admit the oldest queued requests
whose condition is ready into free slots, step, repeat; it sleeps only while no row is active.
Audio reaches each ticket's queue through `call_soon_threadsafe`; a cancelled ticket's row
leaves at the next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import anyio
import numpy as np
import numpy.typing as npt

from composer import metrics
from composer.engine.core import EngineCore
from composer.engine.musicgen import Condition
from composer.generation import GenerationRequest
from composer.scheduler import END, Ticket
from weavewave_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
"""How long the model thread sleeps at most with nothing to do (it is woken on arrivals)."""


class TicketListener:
    """A row's audio, handed from the delivery thread to its ticket on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ticket: Ticket) -> None:
        self._loop = loop
        self._ticket = ticket

    @property
    def cancelled(self) -> bool:
        return self._ticket.cancelled

    def emit(self, samples: npt.NDArray[np.float32]) -> None:
        if not self._ticket.cancelled:
            self._loop.call_soon_threadsafe(self._ticket.queue.put_nowait, samples)

    def finish(self) -> None:
        self._loop.call_soon_threadsafe(self._ticket.queue.put_nowait, END)

    def fail(self, error: BaseException) -> None:
        self._loop.call_soon_threadsafe(self._ticket.queue.put_nowait, error)


class _Queued:
    """A submitted request waiting for a slot, its condition being worked out meanwhile."""

    def __init__(self, ticket: Ticket, condition: Future[Condition]) -> None:
        self.ticket = ticket
        self.condition = condition
        self.since = time.perf_counter()


class EngineScheduler:
    """Continuous batching: requests join and leave the running batch at every step."""

    def __init__(
        self,
        core: EngineCore,
        max_queue: int,
        condition: Callable[[GenerationRequest], Condition],
    ) -> None:
        self._core = core
        self._condition = condition
        self._max_queue = max_queue
        self._queued: deque[_Queued] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conditioner")
        self._thread = threading.Thread(target=self._loop, name="model", daemon=True)
        self._event_loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        metrics.SLOTS.set(self._core.slots)
        self._thread.start()

    async def stop(self) -> None:
        """Cancel what is queued and running, and wait for the model thread to leave."""
        with self._wake:
            self._stopping = True
            for queued in self._queued:
                queued.ticket.cancel()
            self._wake.notify()
        await anyio.to_thread.run_sync(self._thread.join)
        await anyio.to_thread.run_sync(self._core.close)
        self._encoder.shutdown(wait=False, cancel_futures=True)

    def submit(self, request: GenerationRequest) -> Ticket:
        """Queue a request; 503 with `Retry-After` when the queue is full."""
        assert self._event_loop is not None, "start() first"
        with self._wake:
            waiting = sum(1 for q in self._queued if not q.ticket.cancelled)
            if waiting >= self._max_queue:
                raise ServiceUnavailable(
                    "The composer's queue is full; retry shortly.",
                    code="queue_full",
                    retry_after_s=5,
                )
            ticket = Ticket(request)
            condition = self._encoder.submit(self._condition, request)
            condition.add_done_callback(lambda _: self._notify())
            self._queued.append(_Queued(ticket, condition))
            metrics.QUEUE_DEPTH.set(len(self._queued))
            self._wake.notify()
        return ticket

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def _loop(self) -> None:
        core = self._core
        while True:
            with self._wake:
                if self._stopping:
                    core.cancel_all()
                    return
                admitted = self._admit()
                if not core.rows and not admitted:
                    self._wake.wait(IDLE_POLL_S)
                    continue
            started = time.perf_counter()
            try:
                stepped = core.step()
            except Exception as exc:  # noqa: BLE001 - every active request learns of it
                logger.exception("a generation step failed for %d rows", len(core.rows))
                core.fail_all(exc)
                continue
            if stepped:
                metrics.STEPS.inc()
                metrics.STEP_ROWS.observe(stepped)
                metrics.STEP_SECONDS.observe(time.perf_counter() - started)
            metrics.SLOTS_BUSY.set(len(core.rows))

    def _admit(self) -> bool:
        """Move the oldest queued requests whose condition is ready into free slots (in
        order: a request whose condition is still being worked out holds back those behind
        it). Holds `_wake`."""
        assert self._event_loop is not None
        admitted = False
        while self._queued and self._core.free_slots:
            queued = self._queued[0]
            if queued.ticket.cancelled:
                self._queued.popleft()
                continue
            if not queued.condition.done():
                break
            self._queued.popleft()
            listener = TicketListener(self._event_loop, queued.ticket)
            error = queued.condition.exception()
            if error is not None:
                listener.fail(error)
                continue
            try:
                self._core.admit(queued.ticket.request, listener, queued.condition.result())
            except Exception as exc:  # noqa: BLE001 - that request fails; the loop goes on
                logger.exception("a request could not be admitted")
                listener.fail(exc)
                continue
            metrics.QUEUE_WAIT.observe(time.perf_counter() - queued.since)
            admitted = True
        metrics.QUEUE_DEPTH.set(len(self._queued))
        metrics.SLOTS_BUSY.set(len(self._core.rows))
        return admitted
