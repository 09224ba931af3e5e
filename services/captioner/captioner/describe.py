"""Describer: uploads -> decoded media -> prompt -> engine -> a validated `MusicBrief`.

The model is asked for JSON under a schema (guided decoding). Its answer is validated; an
invalid one is retried once with fresh sampling, and if that fails too the brief falls back to
the model's plain-text description, flagged in `source` and `warnings`. A model that writes
nonsense therefore never turns into a 500.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio

from captioner import metrics
from captioner.brief import NEUTRAL_DESCRIPTION, parse_brief, tidy_description
from captioner.engine import CaptionEngine, EngineOutput, EngineRequest
from captioner.media import DecodedImage, MediaLimits, audio_facts, decode_image
from captioner.prompts import (
    BRIEF_JSON_SCHEMA,
    SECTION_TOKENS,
    BriefFields,
    PromptInputs,
    SectionFields,
    SongRequest,
    build_messages,
    clean_user_prompt,
    with_sections,
)
from captioner.scenes import (
    SceneLimits,
    tempo_for_cuts,
)
from captioner.video import DecodedVideo, sample_video
from weavewave_common.audio import DecodedAudio, DecodeStopped, StopAsked, decode_audio, never
from weavewave_common.errors import InvalidInput, PayloadTooLarge, ServiceUnavailable
from weavewave_common.protocol import (
    LYRICS_MAX_CHARS,
    BriefSource,
    MediaFacts,
    MusicBrief,
    Score,
    Timings,
    TokenUsage,
)
from weavewave_common.uploads import Upload

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DescribeInput:
    prompt: str | None = None
    images: list[Upload] = field(default_factory=list)
    video: Upload | None = None
    audio: Upload | None = None
    hear: bool = True
    """Give audio to a model that can hear it (False: decoded and reported, not heard; the
    gateway's `audio_use` asks for that when the clip is for the composer alone)."""
    vocals: bool = False
    """A song with vocals: the brief gets lyrics (written, unless `lyrics` are given)."""
    lyrics: str | None = None
    """The user's own lyrics: kept exactly as given, never rewritten (and never logged)."""
    duration_s: float | None = None
    """The song's length, to size written lyrics (a video's length when there is one)."""
    score: Score = Score.SECTIONS
    """A video in sections on its cuts, or one piece throughout."""
    speech: bool = False
    """Find where a video's soundtrack speaks (for a mix that keeps the voices)."""

    @property
    def own_lyrics(self) -> str | None:
        """The user's lyrics when they say anything (blank lyrics are none)."""
        return self.lyrics if self.lyrics and self.lyrics.strip() else None

    @property
    def song(self) -> bool:
        return self.vocals or self.own_lyrics is not None


@dataclass(frozen=True)
class DescribeLimits:
    """Per-request caps enforced before any decoding."""

    max_prompt_chars: int = 2000
    max_images: int = 8
    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 500 * 1024 * 1024
    max_audio_bytes: int = 50 * 1024 * 1024
    max_pending: int = 32
    max_concurrent_decodes: int = 2
    """Requests decoding media at once: each decode may take hundreds of MB at the caps, so
    their number, not only their size, bounds the memory they take."""
    max_tokens: int = 256
    temperature: float = 0.7
    scenes: SceneLimits = field(default_factory=SceneLimits)


@dataclass
class _Decoded:
    images: list[DecodedImage]
    video: DecodedVideo | None
    audio: DecodedAudio | None
    sections: tuple[tuple[float, float], ...] = ()
    """The video's sections (start, end) when there are two or more."""


class Describer:
    """Turns one request's uploads and words into a `MusicBrief`."""

    def __init__(self, engine: CaptionEngine, media: MediaLimits, limits: DescribeLimits) -> None:
        self._engine = engine
        self._media = media
        self._limits = limits
        self._pending = 0
        self._decoding = asyncio.Semaphore(limits.max_concurrent_decodes)

    @property
    def model_name(self) -> str:
        return self._engine.model_name

    @property
    def hears_audio(self) -> bool:
        """Whether the model takes audio (an upload, a video's soundtrack)."""
        return self._engine.accepts_audio

    def check(self, request: DescribeInput) -> None:
        """Reject what is plainly out of bounds before touching any file."""
        limits = self._limits
        has_prompt = clean_user_prompt(request.prompt) is not None
        has_lyrics = request.own_lyrics is not None
        if not (has_prompt or has_lyrics or request.images or request.video or request.audio):
            raise InvalidInput(
                "Give at least one of: prompt, lyrics, images, video, audio.",
                code="empty_request",
            )
        if request.lyrics and len(request.lyrics) > LYRICS_MAX_CHARS:
            raise InvalidInput(
                f"lyrics: over {LYRICS_MAX_CHARS} characters.", code="lyrics_too_long"
            )
        if request.prompt and len(request.prompt) > limits.max_prompt_chars:
            raise InvalidInput(
                f"prompt: over {limits.max_prompt_chars} characters.", code="prompt_too_long"
            )
        if len(request.images) > limits.max_images:
            raise InvalidInput(
                f"images: at most {limits.max_images} per request.", code="too_many_images"
            )
        caps: list[tuple[Upload | None, int]] = [
            (u, limits.max_image_bytes) for u in request.images
        ]
        caps += [(request.video, limits.max_video_bytes), (request.audio, limits.max_audio_bytes)]
        for upload, cap in caps:
            if upload is not None and upload.size is not None and upload.size > cap:
                raise PayloadTooLarge(f"{upload.filename or 'upload'}: over {cap} bytes.")

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if self._pending >= self._limits.max_pending:
            raise ServiceUnavailable(
                "The captioner is busy; retry shortly.", code="busy", retry_after_s=2
            )
        self._pending += 1
        metrics.IN_FLIGHT.inc()
        try:
            yield
        finally:
            self._pending -= 1
            metrics.IN_FLIGHT.dec()

    def _decode(self, request: DescribeInput, stop: StopAsked = never) -> _Decoded:
        """Every input decoded; `stop()` (the client left) ends it between images and frames."""
        hear = self._engine.accepts_audio and request.hear
        images = []
        for upload in request.images:
            if stop():
                raise DecodeStopped("images")
            images.append(decode_image(upload.file, upload.filename, self._media))
        video = None
        sections: tuple[tuple[float, float], ...] = ()
        if request.video is not None:
            scenes = self._limits.scenes if request.score is Score.SECTIONS else None
            video = sample_video(
                request.video.file,
                request.video.filename,
                self._media,
                hear,
                stop,
                scenes,
                request.speech,
            )
            sections = video.sections
        audio = None
        if request.audio is not None:
            audio = decode_audio(
                request.audio.file,
                request.audio.filename,
                self._media.audio_sample_rate,
                self._media.max_audio_seconds,
                stop=stop,
            )
        return _Decoded(images, video, audio, sections)

    async def _decoded(self, request: DescribeInput) -> _Decoded:
        """`_decode` in a worker thread that stops soon after its caller is cancelled (a
        thread cannot be cancelled: it is told, and checks between frames)."""
        stopped = threading.Event()
        async with self._decoding:  # a bounded number at once: memory, not only size
            try:
                return await anyio.to_thread.run_sync(self._decode, request, stopped.is_set)
            except BaseException:
                stopped.set()
                raise

    async def describe(self, request: DescribeInput, request_id: str) -> MusicBrief:
        """Decode, prompt, generate and validate; see the module docstring for the fallbacks."""
        self.check(request)
        try:
            return await self._describe(request, request_id)
        except asyncio.CancelledError:
            metrics.FAILURES.labels("cancelled").inc()
            raise

    async def _describe(self, request: DescribeInput, request_id: str) -> MusicBrief:
        with self._slot():
            started = time.perf_counter()
            decoded = await self._decoded(request)
            decode_s = time.perf_counter() - started
            metrics.DECODE_SECONDS.observe(decode_s)
            brief = await self._write(request, decoded, request_id)
            generate_s = time.perf_counter() - started - decode_s
            metrics.GENERATE_SECONDS.observe(generate_s)
            timings = Timings(
                decode_s=round(decode_s, 4),
                generate_s=round(generate_s, 4),
                total_s=round(decode_s + generate_s, 4),
            )
            metrics.BRIEFS.labels(brief.source.value).inc()
            return brief.model_copy(update={"timings": timings})

    def _engine_request(
        self,
        decoded: _Decoded,
        request: DescribeInput,
        request_id: str,
        structured: bool,
        temperature: float,
        song: SongRequest | None,
    ) -> EngineRequest:
        hear = self._engine.accepts_audio and request.hear
        clips = []
        if hear and decoded.audio is not None:
            clips.append((decoded.audio.samples, decoded.audio.sample_rate))
        if hear and decoded.video is not None and decoded.video.soundtrack is not None:
            clips.append((decoded.video.soundtrack.samples, decoded.video.soundtrack.sample_rate))
        video = decoded.video
        inputs = PromptInputs(
            user_prompt=request.prompt,
            image_count=len(decoded.images),
            video_frames=len(video.timestamps) if video else 0,
            video_seconds=video.duration_s if video else 0.0,
            audio_clips=len(clips),
            song=song,
            sections=decoded.sections,
        )
        schema = song.schema if song is not None else BRIEF_JSON_SCHEMA
        if decoded.sections:
            schema = with_sections(schema, len(decoded.sections))
        return EngineRequest(
            request_id=request_id,
            messages=build_messages(inputs, structured=structured),
            images=[d.image for d in decoded.images],
            video=(video.frames, video.metadata) if video else None,
            audio=clips,
            json_schema=schema if structured else None,
            max_tokens=self._limits.max_tokens + SECTION_TOKENS * len(decoded.sections),
            temperature=temperature,
        )

    async def _write(
        self, request: DescribeInput, decoded: _Decoded, request_id: str
    ) -> MusicBrief:
        usage = TokenUsage()
        warnings: list[str] = []
        temperature = self._limits.temperature
        attempts = [(True, temperature), (True, max(temperature, 0.7)), (False, temperature)]
        parsed: tuple[BriefFields, list[SectionFields]] | None = None
        output = EngineOutput("", 0, 0, None)
        song = _song(request, decoded.video.duration_s if decoded.video else None)
        kind = song.fields if song is not None else BriefFields
        for number, (structured, temp) in enumerate(attempts, start=1):
            engine_request = self._engine_request(
                decoded, request, f"{request_id}-{number}", structured, temp, song
            )
            output = await self._engine.generate(engine_request)
            usage = _add_usage(usage, output)
            if not structured:
                break
            parsed = parse_brief(output.text, kind, len(decoded.sections))
            if parsed is not None:
                break
            warnings.append(f"attempt {number}: the model's JSON was not a valid brief")
            logger.info("brief attempt %d invalid (finish %s)", number, output.finish_reason)
        if parsed is not None:
            source = BriefSource.STRUCTURED if usage.attempts == 1 else BriefSource.RETRIED
            fields, parts = parsed
            fields = _on_the_cuts(fields, decoded.sections, warnings)
            written = {**fields.model_dump(), "sections": _timed(decoded.sections, parts)}
            return self._brief(written, source, warnings, usage, decoded, request)
        description = tidy_description(output.text)
        if len(description) < 3:
            description = tidy_description(clean_user_prompt(request.prompt) or "")
            description = description or NEUTRAL_DESCRIPTION
            warnings.append("the model wrote no usable text; the description is a stand-in")
        else:
            warnings.append("the description is the model's plain text (no structured fields)")
        plain: dict[str, object] = {"description": description}
        if decoded.sections:
            # the cuts are the video's, not the model's: the times stay, with one description
            plain["sections"] = [
                {"start_s": a, "end_s": b, "description": description} for a, b in decoded.sections
            ]
            warnings.append("the sections share the one description (no structured sections)")
        return self._brief(plain, BriefSource.PLAIN_TEXT, warnings, usage, decoded, request)

    def _brief(
        self,
        fields: dict[str, object],
        source: BriefSource,
        warnings: list[str],
        usage: TokenUsage,
        decoded: _Decoded,
        request: DescribeInput,
    ) -> MusicBrief:
        hear = self._engine.accepts_audio and request.hear
        video = decoded.video
        media = MediaFacts(
            images=[d.facts for d in decoded.images],
            video=video.facts(
                request.video.filename if request.video else None,
                audio_used=hear and video.soundtrack is not None,
            )
            if video
            else None,
            audio=audio_facts(
                decoded.audio, request.audio.filename if request.audio else None, used=hear
            )
            if decoded.audio
            else None,
        )
        if video is not None and video.seen_until_s is not None:
            warnings.append(
                f"the video's keyframes are sparse: its frames were seen up to "
                f"{video.seen_until_s:.0f} s of {video.duration_s:.0f} s"
            )
        if decoded.audio is not None and not self._engine.accepts_audio:
            warnings.append("the audio clip was decoded but this model cannot hear it")
        metrics.TOKENS.labels("prompt").inc(usage.prompt_tokens)
        metrics.TOKENS.labels("completion").inc(usage.completion_tokens)
        if request.own_lyrics is not None:
            # the user's words, exactly; line endings as \n (browsers send a textarea's as \r\n)
            fields = {**fields, "lyrics": _lines(request.own_lyrics)}
        elif request.song and not fields.get("lyrics"):
            warnings.append("no lyrics were written: the model's answer was not a valid song")
        return MusicBrief.model_validate(
            {
                **fields,
                "source": source,
                "warnings": warnings,
                "model": self._engine.model_name,
                "usage": usage,
                "timings": Timings(decode_s=0, generate_s=0, total_s=0),
                "media": media,
            }
        )


def _on_the_cuts(
    fields: BriefFields, sections: tuple[tuple[float, float], ...], warnings: list[str]
) -> BriefFields:
    """The brief with the tempo near the model's that puts the most section starts on a beat
    (`scenes.tempo_for_cuts`), its description saying the same tempo."""
    starts = [start for start, _ in sections[1:]]
    if not starts:
        return fields
    choice = tempo_for_cuts(starts, fields.tempo_bpm)
    if choice.on_beat <= choice.on_beat_as_suggested:
        return fields
    warnings.append(
        f"tempo {fields.tempo_bpm} -> {choice.bpm} BPM: {choice.on_beat} of {len(starts)} "
        f"section starts on a beat (was {choice.on_beat_as_suggested})"
    )
    description = re.sub(
        rf"\b{fields.tempo_bpm}\s*BPM\b", f"{choice.bpm} BPM", fields.description, flags=re.I
    )
    return fields.model_copy(update={"tempo_bpm": choice.bpm, "description": description})


def _timed(
    spans: tuple[tuple[float, float], ...], parts: list[SectionFields]
) -> list[dict[str, object]]:
    """The model's sections with the captioner's times (the model writes what, never when)."""
    return [
        {"start_s": a, "end_s": b, **part.model_dump()}
        for (a, b), part in zip(spans, parts, strict=True)
    ]


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _song(request: DescribeInput, video_s: float | None) -> SongRequest | None:
    """The song part of the prompt (None for an instrumental), sized to the request's length:
    its duration, else the video's, else a 30 s default."""
    if not request.song:
        return None
    seconds = request.duration_s or video_s or DEFAULT_SONG_S
    return SongRequest(seconds=seconds, lyrics=request.own_lyrics)


DEFAULT_SONG_S = 30.0


def _add_usage(usage: TokenUsage, output: EngineOutput) -> TokenUsage:
    return TokenUsage(
        prompt_tokens=usage.prompt_tokens + output.prompt_tokens,
        completion_tokens=usage.completion_tokens + output.completion_tokens,
        attempts=usage.attempts + 1,
    )
