"""A music request, parsed once.

`MusicRequests.parse` reads a form (`/generate`, `/compose`, a job) into a `MusicRequest`: its
text fields validated in one pass into the route's own form model, its uploads by role, the
composer it names with that composer's model card, and its duration checked against the
gateway's limit and the composer's own. Everything a request can be refused for without spending
a model is refused there, before any upstream is called. The `Generator` then reads the typed
request, never the raw form, and `to_compose_request` is the one place the composer's form is
written (as vLLM's `ChatCompletionRequest.to_sampling_params()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from gateway.audio_use import composer_uses_of
from gateway.composers import Composers
from gateway.mux import check_muxable
from gateway.protocol import (
    AudioUse,
    ComposeForm,
    EditedBrief,
    GenerateForm,
    KeepOriginal,
    Knobs,
    OutputFormat,
)
from gateway.sections import PieceFacts, composer_sections
from gateway.uploads import FormFile, ParsedForm
from gateway.upstream import ComposerClient
from weavewave_common.errors import InvalidInput, describe_validation
from weavewave_common.protocol import (
    AudioFormat,
    BriefSection,
    ComposeFields,
    ComposerCard,
    MusicBrief,
    Normalize,
    Score,
)


class Entry(StrEnum):
    """How a request reaches the composer."""

    GENERATE = "generate"
    """Described by the captioner first, unless the form brings a finished `description`."""
    COMPOSE = "compose"
    """A description straight to the composer (no video, no captioner)."""


Duration = float | Literal["auto"] | None
"""Seconds asked for; `auto`: the video's length; None: the gateway's default."""


@dataclass(frozen=True)
class DurationLimits:
    """The gateway's own duration settings (a composer's card may lower the longest)."""

    default_s: float
    max_s: float


@dataclass(frozen=True)
class Uploads:
    """A form's files by role."""

    images: list[FormFile]
    video: FormFile | None
    audio: FormFile | None

    @classmethod
    def of(cls, form: ParsedForm) -> Uploads:
        def first(field: str) -> FormFile | None:
            found = form.by_field(field)
            return found[0] if found else None

        return cls(form.by_field("images"), first("video"), first("audio"))


@dataclass(frozen=True)
class ChosenComposer:
    """The composer a request names, and its model card (None: not answering now)."""

    name: str
    client: ComposerClient
    card: ComposerCard | None

    @property
    def uses(self) -> list[AudioUse]:
        """What its model can do with an audio clip."""
        return composer_uses_of(self.card)

    @property
    def sings(self) -> bool:
        return self.card is not None and self.card.sings

    @property
    def follows_sections(self) -> bool:
        return self.card is not None and self.card.follows_sections


def _present(text: str | None) -> str | None:
    """A text field's value, None when absent or blank."""
    return text if text is not None and text.strip() else None


def require_inputs(prompt: str | None, lyrics: str | None, has_files: bool) -> None:
    """422 `empty_request` when there is nothing to describe: no words, lyrics or files."""
    if _present(prompt) is None and _present(lyrics) is None and not has_files:
        raise InvalidInput(
            "Give at least one of: prompt, lyrics, images, video, audio.", code="empty_request"
        )


def parse_duration(raw: str | None) -> Duration:
    """The `duration` field: a number of seconds, `auto`, or nothing (empty counts as nothing)."""
    if raw is None or raw.strip() == "":
        return None
    if raw.strip() == "auto":
        return "auto"
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput("duration: a number of seconds, or auto.") from None


def parse_brief(raw: str | None) -> EditedBrief | None:
    """The `brief` field (JSON) as the brief to compose; None when absent or blank."""
    if raw is None or not raw.strip():
        return None
    try:
        return EditedBrief.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(
            f"brief: {describe_validation(exc.errors())}", code="invalid_brief"
        ) from exc


def whole_brief(raw: str | None) -> MusicBrief | None:
    """The `brief` field as a whole `MusicBrief` when it is one (`/describe`'s answer sent
    back, edited or not), so what was composed is recorded with all of it; else None."""
    if raw is None or not raw.strip():
        return None
    try:
        return MusicBrief.model_validate_json(raw)
    except ValidationError:
        return None


Form = TypeVar("Form", bound=BaseModel)


def validated(model: type[Form], fields: dict[str, str]) -> Form:
    """`fields` as `model` (the route's form model: files absent, so at their defaults). An
    empty field counts as absent, as FastAPI reads forms (a cleared input sends one)."""
    try:
        return model.model_validate({name: v for name, v in fields.items() if v != ""})
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from exc


@dataclass(frozen=True)
class MusicRequest:
    """One request for music, typed and checked: what the `Generator` runs."""

    form: ParsedForm
    """Where the uploads' files live: whoever holds the request closes it."""
    entry: Entry
    knobs: Knobs
    """The validated form (a `GenerateForm`, `ComposeForm` or job form), `mp4` made `mux`."""
    uploads: Uploads
    composer: ChosenComposer
    duration: Duration
    longest_s: float
    """The longest audio this request may have: the gateway's limit or the composer's own."""
    default_s: float
    prompt: str | None
    lyrics: str | None
    """The user's own lyrics (None when absent or blank)."""
    vocals: bool
    description: str | None
    """A finished description to compose (None: the captioner writes one)."""
    brief: EditedBrief | None = None
    """A brief sent back to compose as it is (its description is `description`)."""
    brief_whole: MusicBrief | None = None
    """`brief` with every field it came with, when it is a whole `MusicBrief`."""
    score: Score | None = None
    """As asked (None: sections where the composer follows them)."""
    keep: KeepOriginal | None = None
    """What of a muxed video's own soundtrack stays (None: its voices when it has any)."""

    @property
    def finds_speech(self) -> bool:
        """Whether the captioner is asked where the video speaks (for the mix)."""
        return self.knobs.mux and self.keep in (None, KeepOriginal.SPEECH)

    @property
    def in_sections(self) -> bool:
        """Whether a video is scored in sections: unless asked for one piece, where the
        composer follows them (asked for with one that does not is refused at parse)."""
        return self.score is not Score.SINGLE and self.composer.follows_sections

    @property
    def wants_song(self) -> bool:
        brief_sings = self.brief is not None and bool(self.brief.lyrics)
        return self.vocals or self.lyrics is not None or brief_sings

    @property
    def own_song(self) -> dict[str, str]:
        """The composer's song fields for the user's own lyrics (none when there are none)."""
        return {"lyrics": self.lyrics} if self.lyrics else {}

    @property
    def has_audio(self) -> bool:
        return self.uploads.audio is not None

    def duration_s(self, video_s: float | None) -> float:
        """The seconds to compose: as asked, the video's (capped) for `auto`, else the
        default; `video_s` is the video's length when there is one."""
        if self.duration == "auto":
            if video_s is None:
                raise InvalidInput("duration=auto needs a video.", code="auto_without_video")
            return round(min(max(video_s, 1.0), self.longest_s), 2)
        if self.duration is None:
            return min(self.default_s, self.longest_s)
        return self.duration

    def captioner_fields(self, hear: bool) -> dict[str, str]:
        """The text the captioner is given with the uploads (`hear=False` keeps an audio clip
        from its model: the clip is for the composer alone)."""
        return captioner_fields(
            self.prompt,
            self.vocals,
            self.lyrics,
            self.duration if isinstance(self.duration, float) else None,
            hear,
            Score.SECTIONS if self.in_sections else Score.SINGLE,
            self.finds_speech,
        )

    def to_compose_request(
        self,
        description: str,
        duration_s: float,
        song: dict[str, str],
        use: AudioUse | None,
        sections: list[BriefSection] | None = None,
        piece: PieceFacts | None = None,
    ) -> ComposeFields:
        """The composer's form: `song` the lyrics and metadata to sing (empty for an
        instrumental), `use` what the composer does with the audio clip (None: no clip),
        `sections` a video's score in sections (`piece`: what holds through all of them)."""
        knobs = self.knobs
        planned = None
        if sections and self.in_sections:
            planned = composer_sections(sections, piece or PieceFacts(), duration_s)
        if planned is not None:
            description = planned[0]
        values: dict[str, object] = {
            **song,
            "description": description,
            "duration": duration_s,
            # muxed music stays lossless until it goes into the video, and is complete before
            # it is sent: it gets the whole clip's loudness
            "format": AudioFormat.WAV if knobs.mux else AudioFormat(knobs.format.value),
            "normalize": Normalize.LOUDNESS if knobs.mux else knobs.normalize,
            "temperature": knobs.temperature,
            "top_k": knobs.top_k,
            "top_p": knobs.top_p,
            "guidance": knobs.guidance,
        }
        if knobs.seed is not None:
            values["seed"] = knobs.seed
        if planned is not None:
            values["sections"] = planned[1]
        if use is not None and use is not AudioUse.MELODY:
            values.update(reuse_values(use, knobs))
        return ComposeFields.model_validate(values)


def captioner_fields(
    prompt: str | None,
    vocals: bool,
    lyrics: str | None,
    duration_s: float | None,
    hear: bool,
    score: Score = Score.SECTIONS,
    speech: bool = False,
) -> dict[str, str]:
    """The captioner's text fields: `duration_s` sizes a song's lyrics, `speech` asks where
    a video's soundtrack speaks."""
    fields: dict[str, str] = {"score": score.value}
    if speech:
        fields["speech"] = "true"
    if prompt is not None:
        fields["prompt"] = prompt
    if vocals:
        fields["vocals"] = "true"
    if lyrics is not None:
        fields["lyrics"] = lyrics
    if duration_s is not None and 0 < duration_s <= 3600:
        fields["duration"] = f"{duration_s:g}"
    if not hear:
        fields["hear"] = "false"
    return fields


REUSE_KNOBS = {
    AudioUse.COVER: ("cover_strength",),
    AudioUse.REPAINT: ("repaint_start", "repaint_end"),
    AudioUse.STYLE: ("style_start", "style_length", "text_guidance"),
}
"""The knobs each clip use passes on (the others keep the composer's defaults)."""


def reuse_values(use: AudioUse, knobs: Knobs) -> dict[str, object]:
    """The composer's fields for a clip it reuses (`reference`, `cover`, `repaint`,
    `continue`: the clip's own length says where the new music starts, `style`)."""
    values: dict[str, object] = {"audio_use": use.value}
    for name in REUSE_KNOBS.get(use, ()):
        value = getattr(knobs, name)
        if value is not None:
            values[name] = value
    return values


def kept(knobs: Knobs, uploads: Uploads) -> KeepOriginal | None:
    """`keep_original_audio` (or `keep_speech`, its shorthand) checked: they agree, and
    keeping anything needs a video and mux; None when neither was given."""
    keep: KeepOriginal | None = getattr(knobs, "keep_original_audio", None)
    speech: bool | None = getattr(knobs, "keep_speech", None)
    if speech is not None:
        implied = KeepOriginal.SPEECH if speech else KeepOriginal.NONE
        if keep is not None and keep is not implied:
            raise InvalidInput(
                f"keep_speech={str(speech).lower()} and keep_original_audio={keep.value} "
                "disagree: give one.",
                code="keep_conflict",
            )
        keep = implied
    if keep is None:
        return None
    if uploads.video is None:
        raise InvalidInput(
            "keep_original_audio/keep_speech: a video's soundtrack is kept; send a video.",
            code="keep_without_video",
        )
    if keep is not KeepOriginal.NONE and not knobs.mux:
        raise InvalidInput(
            "keep_original_audio/keep_speech: the soundtrack is kept in the muxed video; "
            "ask for mux=true (or format=mp4).",
            code="keep_without_mux",
        )
    return keep


def _check_speech_known(request: MusicRequest) -> None:
    """Keeping speech under a given description needs where the video speaks: the brief
    `/describe` answered carries it (`media.video.speech`)."""
    if request.keep is not KeepOriginal.SPEECH or request.description is None:
        return
    if speech_of(request.brief) is None:
        raise InvalidInput(
            "keep_speech: where the video speaks is not known; send the brief `/describe` "
            "answered for this video (with its media), or let the gateway describe it.",
            code="speech_unknown",
        )


def speech_of(brief: EditedBrief | MusicBrief | None) -> list[tuple[float, float]] | None:
    """A brief's speech spans (None when they were not looked for)."""
    video = brief.media.video if brief is not None and brief.media is not None else None
    if video is None or video.speech is None:
        return None
    return [(span.start_s, span.end_s) for span in video.speech]


class MusicRequests:
    """Parses and checks music requests against the served composers and the gateway's
    duration limits."""

    def __init__(self, composers: Composers, durations: DurationLimits) -> None:
        self.composers = composers
        self._durations = durations

    async def parse(
        self, form: ParsedForm, entry: Entry, model: type[Knobs] | None = None
    ) -> MusicRequest:
        """The typed request, or the 422 it earns; `model` is the route's form model (by
        default that of `entry`). Nothing upstream is asked but the composer's card (cached)."""
        model = model or (ComposeForm if entry is Entry.COMPOSE else GenerateForm)
        if entry is Entry.COMPOSE and _present(form.fields.get("description")) is None:
            raise InvalidInput("description: required.", code="empty_description")
        knobs = validated(model, form.fields)
        if knobs.format is OutputFormat.MP4:  # format=mp4 is mux=true
            knobs = knobs.model_copy(update={"mux": True})
        uploads = Uploads.of(form)
        description = _present(getattr(knobs, "description", None))
        brief = parse_brief(getattr(knobs, "brief", None))
        if brief is not None:
            if description is not None:
                raise InvalidInput(
                    "Give a description or a brief, not both.", code="brief_and_description"
                )
            description = brief.description
        if knobs.mux:
            if entry is Entry.COMPOSE:
                raise InvalidInput("mux: needs a video (use /generate).", code="mux_without_video")
            if uploads.video is None:
                raise InvalidInput("mux: needs a video.", code="mux_without_video")
            await anyio.to_thread.run_sync(check_muxable, uploads.video.file)
        # a muxed video's music fits the video
        duration: Duration = "auto" if knobs.mux else parse_duration(knobs.duration)
        client = self.composers.pick(knobs.model)
        card = await client.model.get()
        composer = ChosenComposer(knobs.model or self.composers.default, client, card)
        request = MusicRequest(
            form=form,
            entry=entry,
            knobs=knobs,
            uploads=uploads,
            composer=composer,
            duration=duration,
            longest_s=self._longest(card),
            default_s=self._durations.default_s,
            prompt=getattr(knobs, "prompt", None),
            lyrics=_present(getattr(knobs, "lyrics", None)),
            vocals=bool(getattr(knobs, "vocals", False)),
            description=description,
            brief=brief,
            brief_whole=whole_brief(getattr(knobs, "brief", None)) if brief else None,
            score=getattr(knobs, "score", None),
            keep=kept(knobs, uploads),
        )
        self._check_duration(request)
        await self._check_sections(request)
        _check_speech_known(request)
        if description is None:
            require_inputs(request.prompt, request.lyrics, bool(form.files))
        await self._check_song(request)
        return request

    def _longest(self, card: ComposerCard | None) -> float:
        own = card.max_duration_s if card is not None else None
        return self._durations.max_s if own is None else min(own, self._durations.max_s)

    def _check_duration(self, request: MusicRequest) -> None:
        seconds = request.duration
        if not isinstance(seconds, float):
            return
        if not 0 < seconds <= self._durations.max_s:
            raise InvalidInput(
                f"duration: between 0 and {self._durations.max_s:g} s.",
                code="duration_out_of_range",
            )
        if seconds > request.longest_s:
            raise InvalidInput(
                f"duration: the composer {request.composer.name!r} makes at most "
                f"{request.longest_s:g} s.",
                code="duration_out_of_range",
            )

    async def _check_sections(self, request: MusicRequest) -> None:
        """`score=sections` needs a composer that follows sections: a 422 naming those that
        do (by default a composer that does not gets one piece)."""
        if request.score is not Score.SECTIONS or request.composer.follows_sections:
            return
        followers = await self.composers.section_followers()
        instead = (
            f"pick one that does with `model` ({', '.join(followers)})"
            if followers
            else "and no served model can"
        )
        raise InvalidInput(
            f"score=sections: the composer ({request.composer.name}) does not follow sections; "
            f"{instead}, or ask for score=single.",
            code="sections_unsupported",
        )

    async def _check_song(self, request: MusicRequest) -> None:
        """Vocals or lyrics need a composer that sings: a 422 naming those that do."""
        if not request.wants_song or request.composer.sings:
            return
        card = request.composer.card
        name = card.name if card is not None else "the composer"
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
