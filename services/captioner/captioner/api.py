"""`POST /v1/describe`: multipart uploads in, `MusicBrief` out; `GET /v1/models`: what the
loaded model takes (the gateway decides from it what an audio upload is for)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from captioner.deps import DescriberDep
from captioner.describe import DescribeInput
from weavewave_common.cancellation import run_until_disconnect
from weavewave_common.deadline import timeout_of, within
from weavewave_common.errors import error_responses
from weavewave_common.protocol import CaptionerCard, CaptionerCards, MusicBrief, Score
from weavewave_common.request_id import current_request_id, new_request_id
from weavewave_common.uploads import Upload

router = APIRouter(prefix="/v1", tags=["captioner"])


@router.post(
    "/describe",
    name="describe",
    response_model=MusicBrief,
    responses=error_responses(400, 413, 415, 422, 503, 504),
    summary="Write a music brief from any mix of text, images, a video and an audio clip.",
)
async def describe(
    http_request: Request,
    describer: DescriberDep,
    prompt: Annotated[str | None, Form(description="The user's own words.")] = None,
    images: Annotated[
        list[UploadFile] | None, File(description="Pictures, any number up to the limit.")
    ] = None,
    video: Annotated[UploadFile | None, File(description="One video clip.")] = None,
    audio: Annotated[
        UploadFile | None, File(description="One audio clip (heard by audio models).")
    ] = None,
    hear: Annotated[
        bool,
        Form(description="Give audio to a model that hears (false: decoded, reported, unheard)."),
    ] = True,
    vocals: Annotated[bool, Form(description="A song with vocals: the brief gets lyrics.")] = False,
    lyrics: Annotated[
        str | None,
        Form(description="Your own lyrics (implies vocals): kept exactly as given."),
    ] = None,
    duration: Annotated[
        float | None,
        Form(gt=0, le=3600, description="The song's length in seconds, to size its lyrics."),
    ] = None,
    score: Annotated[
        Score,
        Form(description="A video in `sections` that change on its cuts, or one `single` piece."),
    ] = Score.SECTIONS,
    speech: Annotated[
        bool, Form(description="Find where the video's soundtrack speaks (`media.video.speech`).")
    ] = False,
) -> MusicBrief:
    request = DescribeInput(
        prompt=prompt,
        images=[Upload.of(f) for f in images or []],
        video=Upload.of(video) if video is not None else None,
        audio=Upload.of(audio) if audio is not None else None,
        hear=hear,
        vocals=vocals,
        lyrics=lyrics,
        duration_s=duration,
        score=score,
        speech=speech,
    )
    work = describer.describe(request, current_request_id() or new_request_id())
    return await run_until_disconnect(http_request, within(timeout_of(http_request), work))


@router.get(
    "/models",
    name="list_models",
    response_model=CaptionerCards,
    responses=error_responses(503),
    summary="The loaded model and what it takes (503 while it loads).",
)
async def list_models(describer: DescriberDep) -> CaptionerCards:
    return CaptionerCards(
        models=[CaptionerCard(name=describer.model_name, hears_audio=describer.hears_audio)]
    )
