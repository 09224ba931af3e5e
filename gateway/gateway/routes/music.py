"""The music routes: `POST /generate`, `POST /describe`, `POST /compose`."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from gateway.protocol import ComposeForm, DescribeForm, GenerateForm
from gateway.request import Entry
from gateway.routes.deps import CapacityDep, GeneratorDep
from gateway.routes.forms import AUDIO, ERRORS, MUXED, held_form, stream_audio
from gateway.routes.openapi import multipart_body
from weavewave_common.cancellation import run_until_disconnect
from weavewave_common.protocol import MusicBrief
from weavewave_common.request_id import current_request_id, new_request_id

router = APIRouter(tags=["music"])


@router.post(
    "/generate",
    name="generate",
    response_class=StreamingResponse,
    responses={**MUXED, **ERRORS},
    openapi_extra=multipart_body(GenerateForm),
    summary="Music from any mix of words, images, a video and an audio clip.",
)
async def generate(
    request: Request, generator: GeneratorDep, capacity: CapacityDep
) -> StreamingResponse:
    start = partial(generator.answer, Entry.GENERATE)
    return await stream_audio(request, generator, capacity, GenerateForm, start)


@router.post(
    "/describe",
    name="describe",
    response_model=MusicBrief,
    responses=ERRORS,
    openapi_extra=multipart_body(DescribeForm),
    summary="The music brief alone, to preview or edit before composing.",
)
async def describe(request: Request, generator: GeneratorDep, capacity: CapacityDep) -> MusicBrief:
    async with held_form(request, generator, capacity, DescribeForm) as form:
        work = generator.describe(form, current_request_id() or new_request_id())
        return await run_until_disconnect(request, work)


@router.post(
    "/compose",
    name="compose",
    response_class=StreamingResponse,
    responses={**AUDIO, **ERRORS},
    openapi_extra=multipart_body(ComposeForm),
    summary="Music from a description alone (no captioning).",
)
async def compose(
    request: Request, generator: GeneratorDep, capacity: CapacityDep
) -> StreamingResponse:
    start = partial(generator.answer, Entry.COMPOSE)
    return await stream_audio(request, generator, capacity, ComposeForm, start)
