"""Composition root: settings -> upstream clients, generator, routes, handlers, middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from gateway.access import AccessControl
from gateway.capacity import Capacity
from gateway.composers import DEFAULT_NAME, Composers, parse_composers
from gateway.config import GatewaySettings
from gateway.generate import Generator
from gateway.jobs.destinations import DestinationPolicy
from gateway.jobs.model import JobForm
from gateway.jobs.runner import JobRunner
from gateway.jobs.stores import open_job_store
from gateway.jobs.webhook import Webhooks
from gateway.judge.model import AnalysisForm
from gateway.judge.service import Judge
from gateway.protocol import BRIEF_FIELD_CHARS, ComposeForm, DescribeForm, GenerateForm
from gateway.replicas import ReplicaPool
from gateway.request import DurationLimits, MusicRequests
from gateway.routes import analyze as analyze_routes
from gateway.routes import jobs as jobs_routes
from gateway.routes import models as models_routes
from gateway.routes import music as music_routes
from gateway.routes.deps import GatewayState, Jobs
from gateway.routes.openapi import install_openapi
from gateway.routes.studio import mount_studio
from gateway.uploads import UploadLimits
from gateway.upstream import CaptionerClient, ComposerClient
from weavewave_common.errors import error_responses
from weavewave_common.protocol import LYRICS_MAX_CHARS
from weavewave_common.service import KEEP_ALIVE_S, build_service_app

WEBHOOK_DRAIN_S = 5.0
"""How long webhook deliveries under way at shutdown may take before they are cancelled."""
UPSTREAM_POOL = httpx.Limits(
    max_connections=None,  # bounded by GATEWAY_MAX_CONCURRENT
    max_keepalive_connections=20,
    keepalive_expiry=KEEP_ALIVE_S / 2,  # idle connections are dropped before the upstream does
)


def upload_limits(settings: GatewaySettings) -> UploadLimits:
    return UploadLimits(
        max_images=settings.max_images,
        max_image_bytes=settings.max_image_bytes,
        max_video_bytes=settings.max_video_bytes,
        max_audio_bytes=settings.max_audio_bytes,
        max_field_chars=settings.max_prompt_chars,
        field_chars=(("lyrics", LYRICS_MAX_CHARS), ("brief", BRIEF_FIELD_CHARS)),
        spool_memory_bytes=settings.spool_memory_bytes,
        idle_timeout_s=settings.upload_idle_timeout_s,
        min_bytes_per_s=settings.min_upload_bytes_per_s,
    )


def replica_pool(
    settings: GatewaySettings, tier: str, urls: list[str] | None = None
) -> ReplicaPool:
    """A tier's replicas from the settings: `urls`, else its URL list, else its one URL (a
    headless Service name stands for every address it resolves to when `resolve_replicas` is
    on)."""
    listed, url, read_s = {
        "captioner": (settings.captioner_urls, settings.captioner_url, settings.describe_timeout_s),
        "composer": (settings.composer_urls, settings.composer_url, settings.compose_timeout_s),
    }[tier]
    timeout = httpx.Timeout(read_s, connect=settings.connect_timeout_s)

    def client(base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=UPSTREAM_POOL)

    return ReplicaPool(tier, urls or listed or [url], client, resolve=settings.resolve_replicas)


def composer_pools(settings: GatewaySettings) -> dict[str, ReplicaPool]:
    """One replica pool per named composer (`GATEWAY_COMPOSERS`), else the one composer."""
    named = parse_composers(settings.composers)
    if not named:
        return {DEFAULT_NAME: replica_pool(settings, "composer")}
    return {name: replica_pool(settings, "composer", [url]) for name, url in named.items()}


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway; upstream connections live as long as the app."""
    pools: dict[str, ReplicaPool] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[GatewayState]:
        async with AsyncExitStack() as stack:
            composers = composer_pools(settings)
            pools["captioner"] = replica_pool(settings, "captioner")
            for name, composer in composers.items():
                pools["composer" if name == DEFAULT_NAME else f"composer {name}"] = composer
            for pool in pools.values():
                stack.push_async_callback(pool.aclose)
                await pool.refresh()
                watcher = asyncio.create_task(pool.watch(settings.replica_check_s))
                stack.callback(watcher.cancel)
            composer_clients = Composers(
                {
                    name: ComposerClient(pool, settings.compose_timeout_s)
                    for name, pool in composers.items()
                }
            )
            durations = DurationLimits(settings.default_duration_s, settings.max_duration_s)
            generator = Generator(
                CaptionerClient(
                    pools["captioner"], settings.describe_retries, settings.describe_timeout_s
                ),
                MusicRequests(composer_clients, durations),
                upload_limits(settings),
                settings.duck_depth_db,
            )
            store = await open_job_store(settings)
            stack.push_async_callback(store.close)
            webhooks = None
            if settings.webhook_secret:
                hooks = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
                policy = DestinationPolicy(settings.webhook_allowed_hosts)
                webhooks = Webhooks(settings.webhook_secret, hooks, policy)
                stack.push_async_callback(webhooks.drain, WEBHOOK_DRAIN_S)
            judge = Judge(
                settings.judge_threads, settings.analyze_max_seconds, settings.judge_weights
            )
            runner = JobRunner(
                store,
                generator,
                workers=settings.job_workers,
                max_queued=settings.max_queued_jobs,
                ttl_s=settings.job_ttl_s,
                webhooks=webhooks,
                lease_s=settings.job_lease_s,
                poll_s=settings.job_poll_s,
                judge=judge if settings.judge_jobs else None,
            )
            await runner.start()
            stack.push_async_callback(runner.stop)
            yield GatewayState(
                generator=generator,
                capacity=Capacity(settings.max_concurrent),
                jobs=Jobs(store, runner, webhooks),
                judge=judge,
            )

    async def readiness() -> str | None:
        """From the watcher's last checks; a tier that was not ready is checked again now, so
        recovery shows at once while a ready gateway's probes cost its upstreams nothing."""
        reasons = []
        for tier, pool in pools.items():
            if pool.readiness() is not None:
                await pool.refresh()
            reason = pool.readiness()
            if reason is not None:
                reasons.append(f"{tier}: {reason}")
        return "; ".join(reasons) or None

    access = AccessControl(
        settings.api_keys,
        settings.revoked_api_keys,
        settings.rate_limit_per_minute,
        settings.read_rate_limit_per_minute,
    )
    guarded = APIRouter(  # API key and rate limit first: every route may answer these
        dependencies=[Depends(access)], responses=error_responses(401, 403, 429)
    )
    for routes in (music_routes, models_routes, jobs_routes, analyze_routes):
        guarded.include_router(routes.router)
    app = build_service_app(
        title="WeaveWave",
        summary="Music from what inspires you: images, video, audio and words.",
        lifespan=lifespan,
        readiness=readiness,
        routers=[guarded],
        max_request_bytes=settings.max_request_bytes,
        degradable=True,  # the studio, /models and jobs serve while a tier restarts
    )
    if settings.cors_origins:  # closed unless configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
            expose_headers=["*"],
        )
    mount_studio(app)
    install_openapi(app, [GenerateForm, DescribeForm, ComposeForm, JobForm, AnalysisForm])
    return app
