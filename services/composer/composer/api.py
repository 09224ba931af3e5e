"""`POST /v1/compose` (streamed audio) and `GET /v1/models`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse

from composer.deps import ComposerDep
from composer.protocol import ComposeRequest
from weavewave_common.deadline import timeout_of
from weavewave_common.errors import error_responses
from weavewave_common.protocol import ComposerCard, ComposerCards
from weavewave_common.service import audio_response
from weavewave_common.uploads import Upload

router = APIRouter(prefix="/v1", tags=["composer"])

AUDIO_RESPONSE = audio_response("The audio, streamed as it is generated.")


@router.post(
    "/compose",
    name="compose",
    response_class=StreamingResponse,
    responses={**AUDIO_RESPONSE, **error_responses(400, 413, 415, 422, 503)},
    summary="Compose music from a description, streamed in the requested format.",
)
async def compose(
    http_request: Request,
    composer: ComposerDep,
    request: Annotated[ComposeRequest, Form()],
    melody: Annotated[UploadFile | None, File(description="A melody to follow.")] = None,
    audio: Annotated[
        UploadFile | None, File(description="A clip to reuse, as `audio_use` says.")
    ] = None,
) -> StreamingResponse:
    stream = await composer.compose(
        request, upload_of(melody), timeout_of(http_request), upload_of(audio)
    )
    return stream.response()


def upload_of(file: UploadFile | None) -> Upload | None:
    if file is None:
        return None
    return Upload.of(file)


@router.get("/models", name="list_models", response_model=ComposerCards)
async def list_models(request: Request, composer: ComposerDep) -> ComposerCards:
    backend = request.state.backend
    card = ComposerCard(
        name=backend.name,
        backend=request.state.backend_kind,
        sample_rate=backend.sample_rate,
        channels=backend.channels,
        supports_melody=backend.supports_melody,
        sings=backend.sings,
        audio_uses=list(backend.audio_uses),
        follows_sections=backend.follows_sections,
        max_duration_s=composer.max_duration_s,
        loaded=True,
    )
    return ComposerCards(models=[card])
