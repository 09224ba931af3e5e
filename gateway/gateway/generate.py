"""Generator: the gateway's serving logic (no FastAPI): uploads -> brief -> audio stream."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote

import anyio

from gateway import metrics
from gateway.audio_use import AudioPlan, audio_use_header, plan_audio
from gateway.mix import mix_soundtrack
from gateway.mux import mux_soundtrack, video_seconds
from gateway.protocol import (
    AUDIO_USE_HEADER,
    BRIEF_HEADER,
    DESCRIPTION_HEADER,
    KEPT_HEADER,
    MP4_MEDIA_TYPE,
    AudioUse,
    DescribeForm,
    EditedBrief,
    KeepOriginal,
)
from gateway.relay import relay
from gateway.request import (
    Entry,
    MusicRequest,
    MusicRequests,
    captioner_fields,
    require_inputs,
    speech_of,
    validated,
)
from gateway.sections import PieceFacts, realised
from gateway.song import song_fields
from gateway.uploads import ParsedForm, UploadLimits, parse_multipart
from gateway.upstream import CaptionerClient
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import CaptionerCard, ComposeFields, ComposerCard, MusicBrief
from weavewave_common.streams import AudioStream
from weavewave_common.threads import run_to_the_end

logger = logging.getLogger(__name__)

PASSED_ON = ("x-sample-rate", "x-channels", "x-duration", "x-seed", "x-model", "x-sections")


@dataclass(frozen=True)
class MixPlan:
    """What of the video's own soundtrack the muxed video keeps, and where it speaks."""

    keep: KeepOriginal
    spans: list[tuple[float, float]]
    depth_db: float


async def _muxed(
    music: AsyncGenerator[bytes], form: ParsedForm, plan: MixPlan
) -> AsyncGenerator[bytes]:
    """The uploaded video with `music` (WAV) as its soundtrack, as MP4 bytes, mixed with the
    video's own as `plan` says. The music is gathered whole first (a container's index needs
    every packet); files go on every path."""
    try:
        folder = await anyio.to_thread.run_sync(partial(tempfile.mkdtemp, prefix="weavewave-mux-"))
        try:
            wav, mp4 = Path(folder) / "music.wav", Path(folder) / "muxed.mp4"
            out = await anyio.to_thread.run_sync(wav.open, "wb")
            try:
                async for chunk in music:
                    await run_to_the_end(out.write, chunk)
            finally:
                out.close()
            video = form.by_field("video")[0].file
            if plan.keep is not KeepOriginal.NONE:
                both = Path(folder) / "mixed.wav"
                await anyio.to_thread.run_sync(
                    mix_soundtrack, video, wav, both, plan.keep, plan.spans, plan.depth_db
                )
                wav = both
            await anyio.to_thread.run_sync(mux_soundtrack, video, wav, mp4)
            result = await anyio.to_thread.run_sync(mp4.open, "rb")
            try:
                while chunk := await anyio.to_thread.run_sync(result.read, 256 * 1024):
                    yield chunk
            finally:
                result.close()
        finally:
            await anyio.to_thread.run_sync(partial(shutil.rmtree, folder, ignore_errors=True))
    finally:
        await music.aclose()
        form.close()


async def _video_seconds(request: MusicRequest) -> float | None:
    video = request.uploads.video
    return await anyio.to_thread.run_sync(video_seconds, video.file) if video else None


class Generator:
    """Runs parsed music requests: describe (unless the request brings a description), then
    compose, then stream (or mux into the video)."""

    def __init__(
        self,
        captioner: CaptionerClient,
        requests: MusicRequests,
        limits: UploadLimits,
        duck_depth_db: float = -12.0,
    ) -> None:
        self._captioner = captioner
        self.requests = requests
        self.composers = requests.composers
        self._limits = limits
        self._duck_depth_db = duck_depth_db

    async def read_form(
        self, content_type: str, body: AsyncIterator[bytes], text_fields: frozenset[str]
    ) -> ParsedForm:
        limits = UploadLimits(**{**self._limits.__dict__, "text_fields": text_fields})
        return await parse_multipart(content_type, body, limits)

    async def answer(self, entry: Entry, form: ParsedForm, request_id: str) -> AudioStream:
        """Parse and check `form`, then run it; the caller must close `form` only if this
        raises."""
        request = await self.requests.parse(form, entry)
        if entry is Entry.COMPOSE:
            return await self.compose(request, request_id)
        return await self.generate(request, request_id)

    async def describe(self, form: ParsedForm, request_id: str) -> MusicBrief:
        """`/describe`: the brief alone."""
        asked = validated(DescribeForm, form.fields)
        require_inputs(asked.prompt, asked.lyrics, bool(form.files))
        lyrics = asked.lyrics if asked.lyrics and asked.lyrics.strip() else None
        fields = captioner_fields(
            asked.prompt,
            asked.vocals,
            lyrics,
            asked.duration,
            hear=True,
            score=asked.score,
            speech=asked.speech,
        )
        return await self._describe(fields, form, request_id)

    async def _describe(
        self, fields: dict[str, str], form: ParsedForm, request_id: str
    ) -> MusicBrief:
        started = time.perf_counter()
        try:
            return await self._captioner.describe(fields, form.files, request_id)
        finally:
            metrics.UPSTREAM_SECONDS.labels("captioner").observe(time.perf_counter() - started)

    async def _compose(
        self,
        request: MusicRequest,
        compose: ComposeFields,
        use: AudioUse | None,
        request_id: str,
        extra_headers: dict[str, str],
        mix: MixPlan | None = None,
    ) -> AudioStream:
        clip = request.uploads.audio if use is not None else None
        started = time.perf_counter()
        response = await request.composer.client.open_stream(compose, clip, request_id)
        metrics.UPSTREAM_SECONDS.labels("composer").observe(time.perf_counter() - started)
        headers = {k: v for k, v in response.headers.items() if k.lower() in PASSED_ON}
        headers.update(extra_headers)
        form = request.form

        async def release() -> None:
            try:
                await response.aclose()
            finally:
                form.close()

        if request.knobs.mux:  # the form (the video) is needed after the music: the muxer closes it
            music = relay(response, started, lambda: None)
            plan = mix or MixPlan(KeepOriginal.NONE, [], self._duck_depth_db)
            headers[KEPT_HEADER] = plan.keep.value
            return AudioStream(MP4_MEDIA_TYPE, headers, _muxed(music, form, plan), release)
        media_type = response.headers.get("content-type", "application/octet-stream")
        return AudioStream(media_type, headers, relay(response, started, form.close), release)

    async def generate(self, request: MusicRequest, request_id: str) -> AudioStream:
        """Describe (unless the request brings a finished `description`), then compose; the
        caller must close the request's form only if this raises."""
        given = request.description
        plan = await self._audio_plan(request, describing=given is None)
        heard = False
        song: dict[str, str] = {}
        brief: MusicBrief | EditedBrief | None = request.brief
        if given is not None:
            description, headers = given, {DESCRIPTION_HEADER: quote(given, safe="")}
            video_s = await _video_seconds(request) if request.duration == "auto" else None
            song = request.own_song
            if request.brief is not None and request.brief.lyrics:
                song = song_fields(request.brief)  # an edited brief's song travels whole
        else:
            fields = request.captioner_fields(hear=plan.hear)
            brief = await self._describe(fields, request.form, request_id)
            song = song_fields(brief)
            description = brief.description
            video_s = brief.media.video.duration_s if brief.media.video else None
            heard = brief.media.audio is not None and brief.media.audio.used
            headers = {
                DESCRIPTION_HEADER: quote(brief.description, safe=""),
                BRIEF_HEADER: _brief_header(brief),
            }
        headers[AUDIO_USE_HEADER] = audio_use_header(request.has_audio, heard, plan.composer_use)
        compose = request.to_compose_request(
            description,
            request.duration_s(video_s),
            song,
            plan.composer_use,
            brief.sections if brief is not None else None,
            PieceFacts.model_validate(brief.model_dump()) if brief is not None else None,
        )
        mix = self._mix_plan(request, brief)
        stream = await self._compose(request, compose, plan.composer_use, request_id, headers, mix)
        composed = brief if isinstance(brief, MusicBrief) else request.brief_whole or brief
        if composed is not None:  # recorded by jobs: the brief as composed, edited or not
            stream.headers[BRIEF_HEADER] = _brief_header(
                _as_realised(composed, stream.headers.get("x-sections"), compose.duration)
            )
        return stream

    def _mix_plan(
        self, request: MusicRequest, brief: MusicBrief | EditedBrief | None
    ) -> MixPlan | None:
        """A muxed video's mix: as asked, or by default its voices kept when it has some."""
        if not request.knobs.mux:
            return None
        spans = speech_of(brief) or []
        keep = request.keep
        if keep is None:
            keep = KeepOriginal.SPEECH if spans else KeepOriginal.NONE
        video = brief.media.video if brief is not None and brief.media is not None else None
        if video is not None and not video.has_audio_track:
            keep = KeepOriginal.NONE  # nothing of its own to keep
        return MixPlan(keep, spans, self._duck_depth_db)

    async def compose(self, request: MusicRequest, request_id: str) -> AudioStream:
        """Text (and optionally a clip) straight to the composer."""
        assert request.description is not None  # a compose request always has one
        plan = await self._audio_plan(request, describing=False)
        auto = request.knobs.audio_use is AudioUse.AUTO
        if request.has_audio and auto and plan.composer_use is None:
            raise InvalidInput(
                "audio: the composer's model takes no clip.", code="melody_unsupported"
            )
        song = request.own_song
        compose = request.to_compose_request(
            request.description, request.duration_s(None), song, plan.composer_use
        )
        headers = {
            DESCRIPTION_HEADER: quote(request.description, safe=""),
            AUDIO_USE_HEADER: audio_use_header(request.has_audio, False, plan.composer_use),
        }
        return await self._compose(request, compose, plan.composer_use, request_id, headers)

    async def _audio_plan(self, request: MusicRequest, describing: bool) -> AudioPlan:
        """What the audio upload is for (`audio_use`); the captioner is asked whether it hears
        only where the choice depends on it."""
        choice = request.knobs.audio_use
        if not request.has_audio or choice is AudioUse.IGNORE:
            return plan_audio(choice, request.has_audio, False, [])
        # auto asks the captioner to hear: one that cannot reports the clip unheard
        can_hear = describing and (choice is AudioUse.AUTO or await self._captioner.hears_audio())
        return plan_audio(choice, True, can_hear, request.composer.uses)

    async def served(self) -> tuple[CaptionerCard | None, ComposerCard | None]:
        """The captioner's and the default composer's model cards (None where one does not
        answer)."""
        return await self._captioner.model.get(), await self.composers.pick(None).model.get()


def _brief_header(brief: MusicBrief | EditedBrief) -> str:
    return quote(json.dumps(brief.model_dump(mode="json"), separators=(",", ":")), safe="")


def _as_realised(
    brief: MusicBrief | EditedBrief, sections_header: str | None, duration_s: float
) -> MusicBrief | EditedBrief:
    """The brief as the audio realised it: its section times on the codec's frames (as
    `X-Sections` says), or as it is when the composer reported none."""
    if sections_header is None or not brief.sections:
        return brief
    timed = realised(brief.sections, sections_header, duration_s)
    return brief.model_copy(update={"sections": timed})
