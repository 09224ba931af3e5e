"""Generator: the gateway's serving logic (no FastAPI): uploads -> brief -> audio stream."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from pydantic import ValidationError

from gateway import metrics
from gateway.audio_use import AudioPlan, audio_use_header, composer_uses_of, plan_audio
from gateway.composers import Composers
from gateway.mux import mux_soundtrack, video_seconds
from gateway.protocol import (
    AUDIO_USE_HEADER,
    BRIEF_HEADER,
    DESCRIPTION_HEADER,
    AudioUse,
    Knobs,
    OutputFormat,
)
from gateway.relay import relay
from gateway.song import song_fields
from gateway.uploads import ParsedForm, UploadLimits, parse_multipart
from gateway.upstream import CaptionerClient
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import AudioFormat, MusicBrief, Normalize
from weavewave_common.threads import run_to_the_end

logger = logging.getLogger(__name__)

PASSED_ON = ("x-sample-rate", "x-channels", "x-duration", "x-seed", "x-model")
KNOB_FIELDS = frozenset(Knobs.model_fields)


@dataclass(frozen=True)
class AudioStream:
    media_type: str
    headers: dict[str, str]
    body: AsyncGenerator[bytes]
    release: Callable[[], Awaitable[None]]
    """Close the upstream stream and the form's files: whoever sends `body` awaits it when
    done, however it ended (also when `body` never started)."""

    async def close(self) -> None:
        """End the body (its own cleanup runs now), then release what it held."""
        try:
            await self.body.aclose()
        finally:
            await self.release()


def _knobs(fields: dict[str, str]) -> Knobs:
    try:
        knobs = Knobs.model_validate({k: v for k, v in fields.items() if k in KNOB_FIELDS})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(problems) from exc
    if knobs.format is OutputFormat.MP4:  # format=mp4 is mux=true
        knobs = knobs.model_copy(update={"mux": True})
    return knobs


def _require_inputs(form: ParsedForm) -> None:
    prompt, lyrics = form.fields.get("prompt"), form.fields.get("lyrics")
    if not (prompt and prompt.strip()) and not (lyrics and lyrics.strip()) and not form.files:
        raise InvalidInput(
            "Give at least one of: prompt, lyrics, images, video, audio.", code="empty_request"
        )


def _wants_song(form: ParsedForm) -> bool:
    lyrics = form.fields.get("lyrics")
    vocals = form.fields.get("vocals", "").strip().lower() in ("true", "1", "yes", "on")
    return vocals or bool(lyrics and lyrics.strip())


def reuse_fields(use: AudioUse, knobs: Knobs) -> dict[str, str]:
    """The composer's fields for a clip it reuses (`reference`, `cover`, `repaint`,
    `continue`: the clip's own length says where the new music starts, `style`)."""
    fields = {"audio_use": use.value}
    named = {
        AudioUse.COVER: ("cover_strength",),
        AudioUse.REPAINT: ("repaint_start", "repaint_end"),
        AudioUse.STYLE: ("style_start", "style_length", "text_guidance"),
    }
    for name in named.get(use, ()):
        value = getattr(knobs, name)
        if value is not None:
            fields[name] = f"{value:g}"
    return fields


def _own_lyrics(form: ParsedForm) -> dict[str, str]:
    """The user's own lyrics as the composer's song field (none when absent or blank)."""
    lyrics = form.fields.get("lyrics", "")
    return {"lyrics": lyrics} if lyrics.strip() else {}


DESCRIBE_FIELDS = ("prompt", "vocals", "lyrics")
"""The text fields the captioner takes as they came (besides `hear` and `duration`)."""


def _seconds(value: str | None) -> float | None:
    """A numeric duration field's seconds (None for none, `auto` or anything else)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 < seconds <= 3600 else None


async def _muxed(music: AsyncGenerator[bytes], form: ParsedForm) -> AsyncGenerator[bytes]:
    """The uploaded video with `music` (WAV) as its soundtrack, as MP4 bytes. The music is
    gathered whole first (a container's index needs every packet); files go on every path."""
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


async def _video_seconds(form: ParsedForm) -> float | None:
    videos = form.by_field("video")
    return await anyio.to_thread.run_sync(video_seconds, videos[0].file) if videos else None


class Generator:
    def __init__(
        self,
        captioner: CaptionerClient,
        composers: Composers,
        limits: UploadLimits,
        max_duration_s: float,
        default_duration_s: float,
    ) -> None:
        self._captioner = captioner
        self.composers = composers
        self._limits = limits
        self._max_duration_s = max_duration_s
        self._default_duration_s = default_duration_s

    async def read_form(
        self, content_type: str, body: AsyncIterator[bytes], text_fields: frozenset[str]
    ) -> ParsedForm:
        limits = UploadLimits(**{**self._limits.__dict__, "text_fields": text_fields})
        return await parse_multipart(content_type, body, limits)

    def check(self, form: ParsedForm) -> None:
        """Refuse now what `generate` would refuse later (jobs check on submit)."""
        knobs = _knobs(form.fields)
        self.composers.pick(knobs.model)
        if knobs.mux and not form.by_field("video"):
            raise InvalidInput("mux: needs a video.", code="mux_without_video")
        if knobs.duration not in (None, "", "auto"):
            self._duration(knobs, None)
        if not form.fields.get("description", "").strip():
            _require_inputs(form)

    async def describe(
        self,
        form: ParsedForm,
        request_id: str,
        hear: bool = True,
        duration_s: float | None = None,
    ) -> MusicBrief:
        """The brief; `hear=False` keeps an audio clip from the captioner's model (it is for
        the composer alone); `duration_s` sizes a song's lyrics."""
        _require_inputs(form)
        fields = {k: form.fields[k] for k in DESCRIBE_FIELDS if form.fields.get(k) is not None}
        if not hear:
            fields["hear"] = "false"
        duration = duration_s or _seconds(form.fields.get("duration"))
        if duration is not None:
            fields["duration"] = f"{duration:g}"
        started = time.perf_counter()
        try:
            return await self._captioner.describe(fields, form.files, request_id)
        finally:
            metrics.UPSTREAM_SECONDS.labels("captioner").observe(time.perf_counter() - started)

    def _duration(self, knobs: Knobs, video_s: float | None) -> float:
        if knobs.duration is None or knobs.duration == "":
            return self._default_duration_s
        if knobs.duration == "auto":
            if video_s is None:
                raise InvalidInput("duration=auto needs a video.", code="auto_without_video")
            return round(min(max(video_s, 1.0), self._max_duration_s), 2)
        try:
            seconds = float(knobs.duration)
        except ValueError as exc:
            raise InvalidInput("duration: a number of seconds, or auto.") from exc
        if not 0 < seconds <= self._max_duration_s:
            raise InvalidInput(
                f"duration: between 0 and {self._max_duration_s:g} s.", code="duration_out_of_range"
            )
        return seconds

    async def _compose(
        self,
        form: ParsedForm,
        description: str,
        knobs: Knobs,
        duration: float,
        request_id: str,
        composer_use: AudioUse | None,
        extra_headers: dict[str, str],
        song: dict[str, str] | None = None,
    ) -> AudioStream:
        fields = {
            **(song or {}),
            "description": description,
            "duration": f"{duration:g}",
            # muxed music stays lossless until it goes into the video
            "format": AudioFormat.WAV.value if knobs.mux else knobs.format.value,
            "temperature": str(knobs.temperature),
            "top_k": str(knobs.top_k),
            "top_p": str(knobs.top_p),
            "guidance": str(knobs.guidance),
            # a muxed video is complete before it is sent: it gets the whole clip's loudness
            "normalize": Normalize.LOUDNESS.value if knobs.mux else knobs.normalize.value,
        }
        if knobs.seed is not None:
            fields["seed"] = str(knobs.seed)
        clip = form.by_field("audio")[0] if composer_use and form.by_field("audio") else None
        as_field = "melody"
        if clip is not None and composer_use is not AudioUse.MELODY:
            assert composer_use is not None
            as_field = "audio"
            fields.update(reuse_fields(composer_use, knobs))
        started = time.perf_counter()
        composer = self.composers.pick(knobs.model)
        response = await composer.open_stream(fields, clip, request_id, as_field)
        metrics.UPSTREAM_SECONDS.labels("composer").observe(time.perf_counter() - started)
        headers = {k: v for k, v in response.headers.items() if k.lower() in PASSED_ON}
        headers.update(extra_headers)

        async def release() -> None:
            try:
                await response.aclose()
            finally:
                form.close()

        if knobs.mux:  # the form (the video) is needed after the music: closed by the muxer
            music = relay(response, started, lambda: None)
            return AudioStream("video/mp4", headers, _muxed(music, form), release)
        media_type = response.headers.get("content-type", "application/octet-stream")
        return AudioStream(media_type, headers, relay(response, started, form.close), release)

    async def generate(self, form: ParsedForm, request_id: str) -> AudioStream:
        """Describe (unless the form brings a finished `description`), then compose; the caller
        must close `form` only if this raises."""
        knobs = _knobs(form.fields)
        if knobs.mux:
            if not form.by_field("video"):
                raise InvalidInput("mux: needs a video.", code="mux_without_video")
            knobs = knobs.model_copy(update={"duration": "auto"})  # the music fits the video
        if knobs.duration not in (None, "", "auto"):
            self._duration(knobs, None)  # refuse a bad duration before spending the captioner
        self.composers.pick(knobs.model)  # an unknown model is refused before any work
        await self.check_song(form)
        given = form.fields.get("description", "").strip()
        plan = await self._audio_plan(form, knobs, describing=not given)
        heard = False
        song: dict[str, str] = {}
        if given:
            description, headers = given, {DESCRIPTION_HEADER: quote(given, safe="")}
            video_s = await _video_seconds(form) if knobs.duration == "auto" else None
            song = _own_lyrics(form)
        else:
            brief = await self.describe(form, request_id, hear=plan.hear)
            song = song_fields(brief)
            description = brief.description
            video_s = brief.media.video.duration_s if brief.media.video else None
            heard = brief.media.audio is not None and brief.media.audio.used
            headers = {
                DESCRIPTION_HEADER: quote(brief.description, safe=""),
                BRIEF_HEADER: quote(
                    json.dumps(brief.model_dump(mode="json"), separators=(",", ":")), safe=""
                ),
            }
        has_audio = bool(form.by_field("audio"))
        headers[AUDIO_USE_HEADER] = audio_use_header(has_audio, heard, plan.composer_use)
        duration = self._duration(knobs, video_s)
        return await self._compose(
            form, description, knobs, duration, request_id, plan.composer_use, headers, song
        )

    async def check_song(self, form: ParsedForm) -> None:
        """Vocals or lyrics need a composer that sings: a 422 naming it otherwise, before any
        work is spent (jobs check on submit)."""
        if not _wants_song(form):
            return
        knobs = _knobs(form.fields)
        card = await self.composers.pick(knobs.model).model.get()
        if card is not None and card.get("sings"):
            return
        name = card.get("name", "the composer") if card else "the composer"
        singers = await self.composers.singers()
        instead = (
            f"pick one that does with `model` ({', '.join(singers)})"
            if singers
            else "and no served model can; leave them out for instrumental music, or use "
            "/describe to write the lyrics"
        )
        raise InvalidInput(
            f"vocals/lyrics: the composer ({name}) does not sing; {instead}.",
            code="vocals_unsupported",
        )

    async def _audio_plan(self, form: ParsedForm, knobs: Knobs, describing: bool) -> AudioPlan:
        """What the audio upload is for (`audio_use`); the models are asked what they can do
        only where the choice depends on it."""
        has_audio = bool(form.by_field("audio"))
        if not has_audio or knobs.audio_use is AudioUse.IGNORE:
            return plan_audio(knobs.audio_use, has_audio, False, [])
        card = await self.composers.pick(knobs.model).model.get()
        # auto asks the captioner to hear: one that cannot reports the clip unheard
        can_hear = describing and (
            knobs.audio_use is AudioUse.AUTO or await self._captioner.hears_audio()
        )
        return plan_audio(knobs.audio_use, has_audio, can_hear, composer_uses_of(card))

    async def served(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The captioner's and the composer's model cards (None where one does not answer)."""
        return await self._captioner.model.get(), await self.composers.pick(None).model.get()

    async def compose(self, form: ParsedForm, request_id: str) -> AudioStream:
        """Text (and optionally a melody) straight to the composer."""
        knobs = _knobs(form.fields)
        if knobs.mux:
            raise InvalidInput("mux: needs a video (use /generate).", code="mux_without_video")
        description = form.fields.get("description", "")
        if not description.strip():
            raise InvalidInput("description: required.", code="empty_description")
        duration = self._duration(knobs, None)
        await self.check_song(form)
        plan = await self._audio_plan(form, knobs, describing=False)
        has_audio = bool(form.by_field("audio"))
        if has_audio and knobs.audio_use is AudioUse.AUTO and plan.composer_use is None:
            raise InvalidInput(
                "audio: the composer's model takes no clip.", code="melody_unsupported"
            )
        return await self._compose(
            form,
            description,
            knobs,
            duration,
            request_id,
            plan.composer_use,
            {
                DESCRIPTION_HEADER: quote(description, safe=""),
                AUDIO_USE_HEADER: audio_use_header(has_audio, False, plan.composer_use),
            },
            _own_lyrics(form),
        )
