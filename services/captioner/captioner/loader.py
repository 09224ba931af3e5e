"""Loads the engine in the background so the service answers (503, `/readyz`) while it loads.

A large model takes minutes to load; the HTTP server starts at once, reports why it is not ready
yet, and switches to serving when the engine is up. A load failure is logged and, by default,
ends the process with a non-zero status (`on_load_failure`) so a restart policy retries it;
otherwise it is kept and reported by `/readyz`. An engine whose core process dies turns
`/readyz` false with the reason.

Stopping while the model loads does not wait for the load: the load is cancelled and the
processes it has started (vLLM's engine core, which holds the accelerator) are terminated, as
they are whenever the engine could not be shut down cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import psutil

from captioner.describe import Describer
from captioner.engine import CaptionEngine
from weavewave_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

EngineFactory = Callable[[], AbstractAsyncContextManager[CaptionEngine]]
DescriberFactory = Callable[[CaptionEngine], Describer]


STOP_TIMEOUT_S = 60


def terminate_children(grace_s: float = 5.0) -> None:
    """End every process this one started (an engine core a cancelled load left behind):
    SIGTERM, then SIGKILL for those still there after `grace_s`."""
    children = psutil.Process(os.getpid()).children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    if children:
        logger.info("terminated %d engine processes", len(children))


class EngineLoader:
    """Owns the engine's lifetime: load in a task, serve, shut down on stop."""

    def __init__(
        self,
        open_engine: EngineFactory,
        make_describer: DescriberFactory,
        on_load_failure: Callable[[], None] | None = None,
    ) -> None:
        self._open_engine = open_engine
        self._make_describer = make_describer
        self._on_load_failure = on_load_failure
        self._engine: CaptionEngine | None = None
        self._describer: Describer | None = None
        self._error: str | None = None
        self._stop = asyncio.Event()
        self._closed_cleanly = False

    async def _hold(self) -> None:
        try:
            async with self._open_engine() as engine:
                self._engine = engine
                self._describer = self._make_describer(engine)
                await self._stop.wait()
            self._closed_cleanly = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure is reported
            self._error = f"{type(exc).__name__}: {exc}"
            logger.exception("the model failed to load")
            if self._on_load_failure is not None:
                self._on_load_failure()
        finally:
            self._describer = None
            self._engine = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[EngineLoader]:
        task = asyncio.create_task(self._hold(), name="engine-loader")
        try:
            yield self
        finally:
            self._stop.set()
            if self._engine is None and not task.done():
                logger.info("stopping while the model loads: the load is cancelled")
                task.cancel()
            _, late = await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)
            if late:
                logger.warning("the engine did not stop within %d s", STOP_TIMEOUT_S)
                task.cancel()
            if not self._closed_cleanly:
                terminate_children()

    def readiness(self) -> str | None:
        """None when serving; otherwise why not."""
        if self._describer is not None:
            assert self._engine is not None
            return self._engine.failure
        if self._error is not None:
            return f"model failed to load: {self._error}"
        return "model is loading"

    def describer(self) -> Describer:
        """The describer, or 503 with `Retry-After` while loading (or after a failed load, or
        once the engine has died)."""
        if self._describer is not None:
            assert self._engine is not None
            failure = self._engine.failure
            if failure is not None:
                raise ServiceUnavailable(
                    f"The model cannot serve: {failure}", code="model_unavailable", retry_after_s=30
                )
            return self._describer
        if self._error is not None:
            raise ServiceUnavailable(
                f"The model failed to load: {self._error}",
                code="model_unavailable",
                retry_after_s=30,
            )
        raise ServiceUnavailable(
            "The model is loading; retry shortly.", code="model_loading", retry_after_s=10
        )
