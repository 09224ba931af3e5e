"""What the routes share: the request's form read under the gateway's limits (holding a
capacity slot), and audio answered as a stream that owns what it holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from gateway.capacity import Capacity
from gateway.generate import Generator
from gateway.protocol import (
    AUDIO_USE_HEADER,
    BRIEF_HEADER,
    DESCRIPTION_HEADER,
    KEPT_HEADER,
    MP4_MEDIA_TYPE,
    OMITTED_HEADER,
    bounded_headers,
)
from gateway.uploads import ParsedForm
from weavewave_common.cancellation import ClientDisconnected, run_until_disconnect
from weavewave_common.errors import error_responses
from weavewave_common.request_id import current_request_id, new_request_id
from weavewave_common.service import audio_response
from weavewave_common.streams import AudioStream, OwnedStreamingResponse

AUDIO_HEADERS = {
    DESCRIPTION_HEADER: "The description composed, URL-encoded (left out when over 4 KiB).",
    BRIEF_HEADER: "The brief composed as URL-encoded JSON, its sections at the times the audio "
    "has them: the captioner's MusicBrief, or the `brief` sent (left out when over 4 KiB).",
    AUDIO_USE_HEADER: "What the audio upload was used for: heard, melody, … unused, none.",
    OMITTED_HEADER: "The text headers left out for their size, comma-separated.",
    "X-Sample-Rate": "Hz.",
    "X-Channels": "1 or 2.",
    "X-Duration": "Seconds of audio.",
    "X-Seed": "The seed used: send it back for the same music.",
    "X-Model": "The composer's model.",
    "X-Sections": "A video scored in sections: where each starts in the audio, seconds, "
    "comma-separated.",
    KEPT_HEADER: "A muxed video: what of its own soundtrack it kept (none, speech, all).",
    "X-Request-ID": "This request's id, in every service's logs.",
}
AUDIO = audio_response(
    "The audio, streamed as it is composed. Headers carry the brief.", AUDIO_HEADERS
)
MUXED = audio_response(
    "The audio, streamed as it is composed, or with `mux` the video with it as its "
    "soundtrack (`video/mp4`). Headers carry the brief.",
    AUDIO_HEADERS,
    also=(MP4_MEDIA_TYPE,),
)
ERRORS = error_responses(400, 401, 403, 408, 413, 415, 422, 429, 502, 503, 504)


def _fields(model: type[Any]) -> frozenset[str]:
    return frozenset(model.model_fields)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request's body as it streams in; a client that leaves mid-upload is a 499 (its
    own doing, counted as such), not a server error."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ClientDisconnected("The client left during its upload.") from None


async def read_form(request: Request, generator: Generator, model: type[Any]) -> ParsedForm:
    """The request's form, streamed and checked against `model`'s text fields."""
    content_type = request.headers.get("content-type", "")
    return await generator.read_form(content_type, _body(request), _fields(model))


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


async def stream_audio(
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
        stream.body, release, media_type=stream.media_type, headers=bounded_headers(stream.headers)
    )
