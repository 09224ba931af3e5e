"""`POST /analyze`: the judge's measures of any uploaded audio."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gateway.judge.measure import Asked
from gateway.judge.model import Analysis, AnalysisAsked, AnalysisForm
from gateway.request import validated
from gateway.routes.deps import CapacityDep, GeneratorDep, JudgeDep
from gateway.routes.forms import ERRORS, held_form
from gateway.routes.openapi import multipart_body
from weavewave_common.cancellation import run_until_disconnect
from weavewave_common.errors import InvalidInput

router = APIRouter(tags=["judge"])


@router.post(
    "/analyze",
    name="analyze",
    response_model=Analysis,
    responses=ERRORS,
    openapi_extra=multipart_body(AnalysisForm),
    summary="Measure audio: tempo, key, loudness, true peak, flaws; and how it fits what was "
    "asked.",
)
async def analyze(
    request: Request, generator: GeneratorDep, capacity: CapacityDep, judge: JudgeDep
) -> Analysis:
    async with held_form(request, generator, capacity, AnalysisForm) as form:
        asked = validated(AnalysisAsked, form.fields)
        audio = form.by_field("audio")
        if not audio:
            raise InvalidInput("audio: required.", code="audio_missing")
        wanted = Asked(tempo_bpm=asked.tempo_bpm, key=asked.key, duration_s=asked.duration)
        work = judge.analyze(audio[0].file, audio[0].filename, wanted)
        return await run_until_disconnect(request, work)
