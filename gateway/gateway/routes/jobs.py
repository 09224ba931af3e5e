"""`POST /jobs`, `GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/audio`, `DELETE /jobs/{id}`.

With API keys on, a job belongs to the key that submitted it: another key gets 404 for it and
does not see it listed. Every route reads the shared store, so any gateway replica answers for
any job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from gateway.access import client_of
from gateway.jobs.model import Job, JobForm, JobPage, JobState
from gateway.jobs.store import JobRecord, JobStore
from gateway.jobs.view import job_view
from gateway.protocol import MP4_MEDIA_TYPE
from gateway.request import Entry
from gateway.routes.deps import CapacityDep, GeneratorDep, JobsDep
from gateway.routes.forms import ERRORS, held_form
from gateway.routes.openapi import multipart_body
from weavewave_common.errors import (
    BadRequest,
    Conflict,
    InvalidInput,
    NotFound,
    error_json,
    error_responses,
)
from weavewave_common.service import audio_response

router = APIRouter(tags=["jobs"])

JOB_AUDIO = audio_response(
    "The job's audio (the file, or the stream that follows it); a muxed video with `mux`.",
    also=(MP4_MEDIA_TYPE,),
)
FOLLOW_POLL_S = 0.2
MAX_WAIT_S = 30.0
"""The longest a `GET /jobs/{id}?wait=` is held (under every proxy's idle timeout)."""


async def _record(jobs: JobsDep, job_id: str, request: Request) -> JobRecord:
    record = await jobs.store.get(job_id)
    client = client_of(request)
    if record is None or (client is not None and record.client != client):
        raise NotFound(f"No job {job_id!r} (it may have expired).", code="job_not_found")
    return record


@router.post(
    "/jobs",
    name="create_job",
    status_code=202,
    response_model=Job,
    responses={
        202: {
            "description": "Accepted: the job, and where to follow it.",
            "headers": {
                "Location": {"description": "The job's URL.", "schema": {"type": "string"}}
            },
        },
        **ERRORS,
        **error_responses(507),
    },
    openapi_extra=multipart_body(JobForm),
    summary="Accept a generation to run in the background; poll it, play it, cancel it.",
)
async def create_job(
    request: Request,
    response: Response,
    generator: GeneratorDep,
    capacity: CapacityDep,
    jobs: JobsDep,
) -> Job:
    async with held_form(request, generator, capacity, JobForm) as form:
        asked = await generator.requests.parse(form, Entry.GENERATE, JobForm)
        kind = "generate" if asked.description is None else "compose"
        webhook = form.fields.get("webhook_url")
        if webhook:
            if jobs.webhooks is None:
                raise InvalidInput("webhook_url: webhooks are off.", code="webhooks_disabled")
            await jobs.webhooks.check(webhook)
        record = await jobs.runner.submit(form, kind, client_of(request))
    response.headers["Location"] = f"/jobs/{record.id}"
    return job_view(record)


@router.get(
    "/jobs/{job_id}",
    name="get_job",
    response_model=Job,
    responses=error_responses(404, 503),
    summary="A job's state, progress, brief and errors; with `wait`, as soon as it changes.",
)
async def get_job(
    job_id: str,
    jobs: JobsDep,
    request: Request,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Hold the answer up to this many seconds until the job is updated "
            "after `after` (a long poll: follow a job without asking again and again).",
        ),
    ] = 0,
    after: Annotated[
        datetime | None,
        Query(description="The `updated_at` of the job as last seen (with `wait`)."),
    ] = None,
) -> Job:
    record = await _record(jobs, job_id, request)
    if wait and after is not None:
        # `updated_at` is shown to the microsecond: compare at that precision
        seen, deadline = round(after.timestamp(), 6), time.monotonic() + wait
        while round(record.updated, 6) <= seen and not record.state.finished:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(FOLLOW_POLL_S)
            record = await _record(jobs, job_id, request)
    return job_view(record)


@router.get(
    "/jobs",
    name="list_jobs",
    response_model=JobPage,
    responses=error_responses(422, 503),
    summary="Your jobs, newest first, a page at a time (pass `next` back as `after`).",
)
async def list_jobs(
    jobs: JobsDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    after: Annotated[
        str | None, Query(max_length=64, description="The `next` of the previous page.")
    ] = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
) -> JobPage:
    records = await jobs.store.page(client_of(request), limit + 1, after, state)
    more = len(records) > limit
    return JobPage(
        jobs=[job_view(r) for r in records[:limit]], next=records[limit - 1].id if more else None
    )


@router.get(
    "/jobs/{job_id}/audio",
    name="get_job_audio",
    response_class=StreamingResponse,
    responses={**JOB_AUDIO, **error_responses(400, 404, 409, 416, 503)},
    summary="The job's audio: the finished file (Range requests), or, while it is being "
    "composed, a stream that follows the file as it grows.",
)
async def get_job_audio(job_id: str, jobs: JobsDep, request: Request) -> Response:
    record = await _record(jobs, job_id, request)
    path = jobs.store.audio_path(record)
    media_type = record.media_type or "application/octet-stream"
    if record.state is JobState.DONE:
        return checked_range(request, path) or FileResponse(path, media_type=media_type)
    if record.state is JobState.COMPOSING and record.media_type and path.exists():
        # (`media_type` is set once the composer's stream is open: before, a job may still be
        # refused by the composer, and is not ready to follow)
        return StreamingResponse(_follow(jobs.store, record, path), media_type=media_type)
    if record.state.finished:
        raise Conflict(f"The job is {record.state.value}: it has no audio.", code="no_audio")
    raise Conflict("The job has no audio yet; poll it.", code="not_ready", retry_after_s=2)


def checked_range(request: Request, path: Path) -> Response | None:
    """The refusal (in the error envelope) for a `Range` the file cannot serve, by the same
    rules `FileResponse` applies (which would answer them in plain text); None when fine."""
    asked = request.headers.get("range")
    if asked is None:
        return None
    size = path.stat().st_size
    try:
        FileResponse._parse_range_header(asked, size)
    except MalformedRangeHeader as exc:
        raise BadRequest(f"Range: {exc.content}", code="malformed_range") from None
    except RangeNotSatisfiable:
        refusal = error_json(416, "range_not_satisfiable", f"Range: the file has {size} bytes.")
        refusal.headers["Content-Range"] = f"bytes */{size}"
        return refusal
    return None


async def _follow(store: JobStore, followed: JobRecord, path: Path) -> AsyncIterator[bytes]:
    """The file's bytes as they are written, until the job ends (cut short if it fails, or
    if its run is cut and the job starts over). Reads run in a worker thread, off the loop."""
    job_id = followed.id
    with path.open("rb") as audio:
        while True:
            chunk = await anyio.to_thread.run_sync(audio.read, 64 * 1024)
            if chunk:
                yield chunk
                continue
            record = await store.get(job_id)
            if record is not None and record.attempts != followed.attempts:
                raise RuntimeError(f"job {job_id}: the run being followed was cut")
            if record is None or record.state.finished:
                rest = await anyio.to_thread.run_sync(audio.read)
                if rest:
                    yield rest
                if record is None or record.state is not JobState.DONE:
                    raise RuntimeError(f"job {job_id} ended without its audio")
                return
            await asyncio.sleep(FOLLOW_POLL_S)


@router.delete(
    "/jobs/{job_id}",
    name="cancel_job",
    response_model=Job,
    responses=error_responses(404, 503),
    summary="Cancel a queued or running job (its generation stops, on whichever replica runs "
    "it); ended jobs are kept.",
)
async def cancel_job(job_id: str, jobs: JobsDep, request: Request) -> Job:
    record = await _record(jobs, job_id, request)
    await jobs.runner.cancel(record)
    return job_view(await jobs.store.get(job_id) or record)
