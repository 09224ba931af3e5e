"""Loads the engine in the background so the service answers (503, `/readyz`) while it loads.

A large model takes minutes to load; the HTTP server starts at once, reports why it is not ready
yet, and switches to serving when the engine is up. A load failure is kept and reported the same
way instead of killing the process, so an operator can read it from `/readyz` and the logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from captioner.describe import Describer
from captioner.engine import CaptionEngine
from weavewave_common.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

EngineFactory = Callable[[], AbstractAsyncContextManager[CaptionEngine]]
DescriberFactory = Callable[[CaptionEngine], Describer]


class EngineLoader:
    """Owns the engine's lifetime: load in a task, serve, shut down on stop."""

    def __init__(self, open_engine: EngineFactory, make_describer: DescriberFactory) -> None:
        self._open_engine = open_engine
        self._make_describer = make_describer
        self._describer: Describer | None = None
        self._error: str | None = None
        self._stop = asyncio.Event()

    async def _hold(self) -> None:
        try:
            async with self._open_engine() as engine:
                self._describer = self._make_describer(engine)
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, not fatal
            self._error = f"{type(exc).__name__}: {exc}"
            logger.exception("the model failed to load")
        finally:
            self._describer = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[EngineLoader]:
        task = asyncio.create_task(self._hold(), name="engine-loader")
        try:
            yield self
        finally:
            self._stop.set()
            try:
                await asyncio.wait_for(task, timeout=60)
            except TimeoutError:
                logger.warning("engine did not stop within 60 s; abandoning it")

    def readiness(self) -> str | None:
        """None when serving; otherwise why not."""
        if self._describer is not None:
            return None
        if self._error is not None:
            return f"model failed to load: {self._error}"
        return "model is loading"

    def describer(self) -> Describer:
        """The describer, or 503 with `Retry-After` while loading (or after a failed load)."""
        if self._describer is not None:
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
