"""Composition root: settings -> engine loader, describer, routes, error handlers, middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from captioner import api
from captioner.config import CaptionerSettings
from captioner.deps import CaptionerState
from captioner.describe import DescribeLimits, Describer
from captioner.engine import CaptionEngine, EngineOptions, open_engine
from captioner.loader import EngineLoader
from captioner.media import MediaLimits
from captioner.scenes import SceneLimits
from weavewave_common.service import build_service_app

EngineFactory = Callable[[], AbstractAsyncContextManager[CaptionEngine]]


def engine_options(settings: CaptionerSettings) -> EngineOptions:
    return EngineOptions(
        model=settings.model,
        served_name=settings.model_name,
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        cpu_kv_cache_gib=settings.cpu_kv_cache_gib,
        enforce_eager=settings.enforce_eager,
        max_num_seqs=settings.max_num_seqs,
        max_images=max(1, settings.max_images),
        audio_input=settings.audio_input,
        max_pixels=settings.max_pixels,
    )


def make_describer_factory(settings: CaptionerSettings) -> Callable[[CaptionEngine], Describer]:
    media = MediaLimits(
        max_decode_pixels=settings.max_decode_pixels,
        max_pixels=settings.max_pixels,
        max_video_seconds=settings.max_video_seconds,
        max_frames=settings.max_frames,
        frames_per_second=settings.frames_per_second,
        max_frame_pixels=settings.max_frame_pixels,
        max_audio_seconds=settings.max_audio_seconds,
        audio_sample_rate=settings.audio_sample_rate,
    )
    limits = DescribeLimits(
        max_prompt_chars=settings.max_prompt_chars,
        max_images=settings.max_images,
        max_image_bytes=settings.max_image_bytes,
        max_video_bytes=settings.max_video_bytes,
        max_audio_bytes=settings.max_audio_bytes,
        max_pending=settings.max_pending,
        max_concurrent_decodes=settings.max_concurrent_decodes,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        scenes=SceneLimits(
            min_section_s=settings.min_section_s,
            max_sections=settings.max_sections,
            max_scan_frames=settings.max_scan_frames,
        ),
    )
    return lambda engine: Describer(engine, media, limits)


def create_app(settings: CaptionerSettings, engine_factory: EngineFactory | None = None) -> FastAPI:
    """Build the captioner app; `engine_factory` defaults to vLLM on `settings.model`."""
    options = engine_options(settings)
    factory = engine_factory or (lambda: open_engine(options))

    def exit_on_failure() -> None:
        """A failed load ends the process non-zero (after a clean shutdown) so that a restart
        policy retries it (`serve` provides `stop`; an app served otherwise keeps its 503)."""
        stop = getattr(app.state, "stop", None)
        if stop is not None:
            stop(1)

    on_failure = exit_on_failure if settings.exit_on_load_failure else None
    loader = EngineLoader(factory, make_describer_factory(settings), on_failure)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[CaptionerState]:
        async with loader.running():
            yield CaptionerState(loader=loader)

    async def readiness() -> str | None:
        return loader.readiness()

    app = build_service_app(
        title="WeaveWave captioner",
        summary="Turns images, video, audio and words into a music brief (vLLM).",
        lifespan=lifespan,
        readiness=readiness,
        routers=[api.router],
        max_request_bytes=settings.max_request_bytes,
    )
    return app
