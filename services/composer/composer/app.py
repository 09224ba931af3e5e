"""Composition root: settings -> backend, scheduler, composer, routes, handlers, middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from composer import api, metrics
from composer.backends import load_backend
from composer.backends.diffusion.pipeline import PipelineBackend
from composer.compose import ComposeLimits, Composer
from composer.config import ComposerSettings
from composer.deps import ComposerState
from composer.engine.sizing import CPU_SLOTS
from composer.generation import BackendOptions, ModelInfo, MusicBackend
from composer.scheduler import BatchScheduler, Lanes, Scheduler
from weavewave_common.service import build_service_app

logger = logging.getLogger(__name__)


def backend_options(settings: ComposerSettings) -> BackendOptions:
    return BackendOptions(
        kind=settings.backend,
        model=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        window_s=settings.window_s,
        extend_stride_s=settings.extend_stride_s,
        chunk_s=settings.chunk_s,
        decode_context_s=settings.decode_context_s,
        melody_stems=settings.melody_stems,
        diffusion_steps=settings.diffusion_steps,
    )


def load_served_model(settings: ComposerSettings) -> tuple[ModelInfo, Scheduler]:
    """Load the configured model and what runs it: the transformers MusicGen on the
    continuous-batching engine; audiocraft and diffusion models on the static batch scheduler
    (audiocraft's token loop generates a whole batch at once; a diffusion batch denoises one
    latent length together). Blocking: run it off the event loop."""
    options = backend_options(settings)
    if settings.backend == "transformers":
        from composer.engine.loader import TransformersBackend
        from composer.engine.runner import EngineScheduler

        model = TransformersBackend.load(options, settings.max_text_tokens)
        core = model.engine(
            model.slots(settings.max_batch_size),
            settings.fixed_shapes,
            settings.graphs(),
            threaded_delivery=True,
        )
        logger.info(
            "engine: %d slots, CUDA graphs %s", core.slots, "on" if core.cuda_graphs else "off"
        )
        metrics.WARMUP_SECONDS.set(core.warm_up(_bucket_ready))
        return model, EngineScheduler(core, settings.max_queue, model.condition)
    backend = load_backend(options)

    def batches(model: MusicBackend) -> BatchScheduler:
        size = settings.max_batch_size
        return BatchScheduler(
            model,
            max_batch_size=CPU_SLOTS if size == "auto" else size,
            max_wait_s=settings.batch_window_ms / 1000,
            max_queue=settings.max_queue,
        )

    if isinstance(backend, PipelineBackend) and settings.long_request_s > 0:
        long_lane = batches(backend.sibling())
        return backend, Lanes(batches(backend), long_lane, settings.long_request_s)
    return backend, batches(backend)


def _bucket_ready(bucket: int, seconds: float) -> None:
    logger.info("engine warm-up: bucket of %d rows ready after %.1f s", bucket, seconds)


def create_app(settings: ComposerSettings) -> FastAPI:
    """Build the composer app; the model is loaded in the lifespan."""
    ready = False

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[ComposerState]:
        nonlocal ready
        model, scheduler = await anyio.to_thread.run_sync(load_served_model, settings)
        limits = ComposeLimits(
            max_duration_s=settings.max_duration_s,
            max_description_chars=settings.max_description_chars,
            max_melody_bytes=settings.max_melody_bytes,
            max_melody_seconds=settings.max_melody_seconds,
        )
        await scheduler.start()
        ready = True
        try:
            yield ComposerState(
                composer=Composer(model, scheduler, limits),
                backend=model,
                max_duration_s=settings.max_duration_s,
                backend_kind=settings.backend,
            )
        finally:
            ready = False
            await scheduler.stop()

    async def readiness() -> str | None:
        return None if ready else "model is loading"

    return build_service_app(
        title="WeaveWave composer",
        summary="Composes music from a brief with MusicGen, streamed as it is generated.",
        lifespan=lifespan,
        readiness=readiness,
        routers=[api.router],
        max_request_bytes=settings.max_request_bytes,
    )
