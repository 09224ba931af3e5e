"""The public routes: `POST /generate`, `POST /describe`, `POST /compose`, `GET /models`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gateway.audio_use import composer_uses_of, possible_uses
from gateway.capacity import Capacity
from gateway.deps import CapacityDep, GeneratorDep
from gateway.generate import AudioStream, Generator
from gateway.openapi import multipart_body
from gateway.protocol import AudioUse, ComposeForm, DescribeForm, GenerateForm
from gateway.uploads import ParsedForm
from weavewave_common.cancellation import run_until_disconnect
from weavewave_common.errors import error_responses
from weavewave_common.protocol import MusicBrief
from weavewave_common.request_id import current_request_id, new_request_id
from weavewave_common.service import audio_response
from weavewave_common.streams import OwnedStreamingResponse

router = APIRouter(tags=["music"])

AUDIO = audio_response("The audio, streamed as it is composed. Headers carry the brief.")
ERRORS = error_responses(400, 401, 403, 408, 413, 415, 422, 429, 502, 503, 504)


def _fields(model: type[Any]) -> frozenset[str]:
    return frozenset(model.model_fields)


async def read_form(request: Request, generator: Generator, model: type[Any]) -> ParsedForm:
    """The request's form, streamed and checked against `model`'s text fields."""
    content_type = request.headers.get("content-type", "")
    return await generator.read_form(content_type, request.stream(), _fields(model))


@asynccontextmanager
async def held_form(
    request: Request, generator: Generator, capacity: Capacity, model: type[Any]
) -> AsyncIterator[ParsedForm]:
    """A capacity slot and the request's form, for a route that answers once its work is done:
    the form's temporary files go and the slot is released when the block ends."""
    slot = capacity.take()
    try:
        form = await read_form(request, generator, model)
        try:
            yield form
        finally:
            form.close()
    finally:
        slot.release()


async def _audio(
    request: Request,
    generator: Generator,
    capacity: Capacity,
    form_model: type[Any],
    start: Callable[[ParsedForm, str], Awaitable[AudioStream]],
) -> StreamingResponse:
    """Take a capacity slot, read the form, start the audio (cancelled if the client leaves
    first), stream it.

    Once the response is returned, it owns the upstream stream, the form's temporary files and
    the slot, and lets go of them when it ends however it ends; before that, this does.
    """
    slot = capacity.take()
    try:
        form = await read_form(request, generator, form_model)
        try:
            work = start(form, current_request_id() or new_request_id())
            stream = await run_until_disconnect(request, work)
        except BaseException:
            form.close()
            raise
    except BaseException:
        slot.release()
        raise

    async def release() -> None:
        try:
            await stream.release()
        finally:
            slot.release()

    return OwnedStreamingResponse(
        stream.body, release, media_type=stream.media_type, headers=stream.headers
    )


@router.post(
    "/generate",
    name="generate",
    response_class=StreamingResponse,
    responses={**AUDIO, **ERRORS},
    openapi_extra=multipart_body(GenerateForm),
    summary="Music from any mix of words, images, a video and an audio clip.",
)
async def generate(
    request: Request, generator: GeneratorDep, capacity: CapacityDep
) -> StreamingResponse:
    return await _audio(request, generator, capacity, GenerateForm, generator.generate)


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
    return await _audio(request, generator, capacity, ComposeForm, generator.compose)


class ServedComposer(BaseModel):
    """One composer a request can name with `model`."""

    name: str = Field(description="What `model` says to use it.")
    model: str | None = Field(description="Its model (null: not answering).")
    sings: bool = Field(description="It sings lyrics.")
    takes_melody: bool = Field(description="It follows an audio clip as a melody.")
    audio_uses: list[AudioUse] = Field(
        description="What it can do with an audio clip (`melody`, `style`, `reference`, "
        "`cover`, `repaint`, `continue`)."
    )
    sample_rate: int | None = Field(description="Hz (null: not answering).")
    channels: int | None = Field(description="1 or 2 (null: not answering).")
    max_duration_s: float | None = Field(description="Its longest clip (null: not answering).")


class ServedModels(BaseModel):
    """The models behind the API now, and what they can do with an audio upload."""

    captioner: str | None = Field(description="The captioner's model (null: not answering).")
    composer: str | None = Field(description="The default composer's model (null: not answering).")
    composers: list[ServedComposer] = Field(
        description="Every composer by name, the default first."
    )
    captioner_hears_audio: bool = Field(description="An audio clip is heard when describing.")
    composer_takes_melody: bool = Field(description="An audio clip can be followed as a melody.")
    composer_sings: bool = Field(description="Songs with vocals and lyrics can be composed.")
    audio_uses: list[AudioUse] = Field(
        description="The `audio_use` values the served models honour besides `auto` and "
        "`ignore` (which always work)."
    )


def served_composer(name: str, card: dict[str, Any] | None) -> ServedComposer:
    card = card or {}
    return ServedComposer(
        name=name,
        model=card.get("name"),
        sings=bool(card.get("sings")),
        takes_melody=bool(card.get("supports_melody")),
        audio_uses=composer_uses_of(card),
        sample_rate=card.get("sample_rate"),
        channels=card.get("channels"),
        max_duration_s=card.get("max_duration_s"),
    )


@router.get(
    "/models",
    name="list_models",
    response_model=ServedModels,
    summary="The served models, and what an audio upload can be used for.",
)
async def list_models(generator: GeneratorDep) -> ServedModels:
    captioner, composer = await generator.served()
    hears = bool(captioner and captioner.get("hears_audio"))
    melody = bool(composer and composer.get("supports_melody"))
    cards = await generator.composers.cards()
    return ServedModels(
        captioner=captioner.get("name") if captioner else None,
        composer=composer.get("name") if composer else None,
        composers=[served_composer(name, card) for name, card in cards.items()],
        captioner_hears_audio=hears,
        composer_takes_melody=melody,
        composer_sings=bool(composer and composer.get("sings")),
        audio_uses=possible_uses(hears, composer_uses_of(composer)),
    )
