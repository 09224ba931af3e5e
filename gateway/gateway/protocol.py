"""The public request forms (named models, so generated clients get named types) and headers."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from weavewave_common.protocol import (
    DESCRIPTION_MAX_CHARS,
    LYRICS_MAX_CHARS,
    NORMALIZE_DESCRIPTION,
    SECTIONS_MAX,
    BriefSection,
    ClipUseFields,
    MediaFacts,
    Normalize,
    SamplingKnobs,
    Score,
    check_sections,
)

DESCRIPTION_HEADER = "X-WeaveWave-Description"
BRIEF_HEADER = "X-WeaveWave-Brief"
AUDIO_USE_HEADER = "X-WeaveWave-Audio-Use"
OMITTED_HEADER = "X-WeaveWave-Omitted"

TEXT_HEADER_BYTES = 4096
"""The most one text header (the description, the brief) may take on the wire. Node's HTTP
client and common proxies refuse responses whose headers pass 16 KiB; with this bound the
whole response stays under 10 KiB."""
TEXT_HEADERS = (DESCRIPTION_HEADER, BRIEF_HEADER)


def bounded_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` with each text header over `TEXT_HEADER_BYTES` left out and named in
    `X-WeaveWave-Omitted` (the brief is whole in `/describe`'s answer and a job's record)."""
    kept, omitted = {}, []
    for name, value in headers.items():
        if name in TEXT_HEADERS and len(value.encode()) > TEXT_HEADER_BYTES:
            omitted.append(name)
        else:
            kept[name] = value
    if omitted:
        kept[OMITTED_HEADER] = ",".join(omitted)
    return kept


BINARY = {"type": "string", "format": "binary"}


class OutputFormat(StrEnum):
    """What a response can be: one of the composer's audio formats, or `mp4` (the uploaded
    video with the music as its soundtrack: the same as `mux=true`)."""

    WAV = "wav"
    FLAC = "flac"
    MP3 = "mp3"
    OGG = "ogg"
    MP4 = "mp4"


class KeepOriginal(StrEnum):
    """What of the video's own soundtrack a muxed video keeps: `none` (the music alone),
    `speech` (the soundtrack, the music ducked under its voices), `all` (the soundtrack and
    the music, undisturbed)."""

    NONE = "none"
    SPEECH = "speech"
    ALL = "all"


KEPT_HEADER = "X-WeaveWave-Original-Audio"
MP4_MEDIA_TYPE = "video/mp4"
"""What `mux` answers: the video with the music as its soundtrack."""


class AudioUse(StrEnum):
    """What an audio upload is for. `auto`: every use the served models support (heard by a
    captioner that hears; a melody for a melody composer, else a style for a style composer,
    else a timbre reference for one that takes it); `ignore`: none; any other: that use alone,
    422 when the served models cannot — `heard`, `melody`, `reference` (its timbre), `cover` (a
    new version of it), `repaint` (it, with a span made anew), `continue` (it as the start, the
    rest made after it), `style` (the style of an excerpt of it, MusicGen-Style)."""

    AUTO = "auto"
    HEARD = "heard"
    MELODY = "melody"
    REFERENCE = "reference"
    COVER = "cover"
    REPAINT = "repaint"
    CONTINUE = "continue"
    STYLE = "style"
    IGNORE = "ignore"


class Knobs(SamplingKnobs, ClipUseFields):
    """Generation settings shared by /generate and /compose (multipart text fields)."""

    model: str | None = Field(
        None,
        max_length=64,
        description="The composer, by name (`GET /models` lists them; default: the first).",
    )
    duration: str | None = Field(
        None, description="Seconds of audio, or `auto` for the video's length (capped)."
    )
    format: OutputFormat = Field(
        OutputFormat.WAV, description="Format of the response (`mp4`: the video, re-scored)."
    )
    normalize: Normalize = Field(
        Normalize.PEAK, description=NORMALIZE_DESCRIPTION + " A muxed video is always `loudness`."
    )
    mux: bool = Field(
        False,
        description="With a video: answer the video itself (MP4) with the music as its "
        "soundtrack, as long as the video (the picture is not re-encoded).",
    )
    audio_use: AudioUse = Field(
        AudioUse.AUTO,
        description="What the audio upload is for (`GET /models` lists what the served models "
        "can do; `X-WeaveWave-Audio-Use` says what was done).",
    )


class SongFields(BaseModel):
    """A song with vocals: lyrics written into the brief, or the user's own."""

    vocals: bool = Field(
        False,
        description="A song with vocals: the brief gets lyrics (composing it needs a composer "
        "that sings; `GET /models` says).",
    )
    lyrics: str | None = Field(
        None,
        description="Your own lyrics, sung as written (implies vocals); section tags such as "
        "[verse] and [chorus] on their own lines.",
    )


class EditedBrief(BaseModel):
    """A brief composed as it is: `/describe`'s answer sent back (edited or not). What the
    composer is given of it; its other fields (source, usage, media …) are ignored."""

    model_config = ConfigDict(extra="ignore")

    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX_CHARS)
    lyrics: str | None = Field(None, max_length=LYRICS_MAX_CHARS)
    vocal_language: str | None = Field(None, max_length=16)
    tempo_bpm: int | None = Field(None, ge=30, le=300)
    key: str | None = Field(None, max_length=20)
    time_signature: str | None = Field(None, max_length=8)
    sections: list[BriefSection] = Field(default_factory=list, max_length=SECTIONS_MAX)
    media: MediaFacts | None = Field(
        None, description="As `/describe` answered: a video's speech spans are kept from it."
    )

    @model_validator(mode="after")
    def _sections_tile(self) -> EditedBrief:
        check_sections(self.sections)
        return self


BRIEF_FIELD_CHARS = LYRICS_MAX_CHARS + (4 + 2 * SECTIONS_MAX) * DESCRIPTION_MAX_CHARS
"""The longest `brief` field: room for the lyrics, the description, the sections and the
rest, escaped."""

SCORE_DESCRIPTION = (
    "A video's score: `sections` that change on its cuts (the default where the composer "
    "follows sections: `GET /models` says), or one `single` piece throughout."
)


class GenerateForm(Knobs, SongFields):
    """`POST /generate`: any mix of prompt, images, video and audio (at least one) + knobs."""

    score: Score | None = Field(None, description=SCORE_DESCRIPTION)
    keep_original_audio: KeepOriginal | None = Field(
        None,
        description="With mux: what of the video's own soundtrack stays under the music "
        "(default: `speech` when the video has voices, else `none`).",
    )
    keep_speech: bool | None = Field(
        None,
        description="With mux: `true` is keep_original_audio=speech, `false` is none.",
    )
    brief: str | None = Field(
        None,
        description="A brief to compose as it is, as JSON: `/describe`'s answer, edited. Its "
        "description, lyrics, tempo, key, time signature and language reach the composer; "
        "the captioner is skipped.",
    )
    prompt: str | None = Field(None, description="Your own words about the music you want.")
    images: list[bytes] = Field(default_factory=list, description="Pictures.")
    video: bytes | None = Field(None, description="One video clip.")
    audio: bytes | None = Field(
        None,
        description="One audio clip: heard by audio models, a melody for melody models.",
    )


class DescribeForm(SongFields):
    """`POST /describe`: the inputs only; answers the brief without composing."""

    duration: float | None = Field(
        None, gt=0, le=3600, description="The song's length in seconds, to size its lyrics."
    )
    score: Score = Field(
        Score.SECTIONS,
        description="A video in `sections` that change on its cuts, or one `single` piece.",
    )
    speech: bool = Field(
        False,
        description="Find where the video's soundtrack speaks (`media.video.speech`): a brief "
        "sent back with it keeps those voices in a muxed video.",
    )
    prompt: str | None = Field(None, description="Your own words about the music you want.")
    images: list[bytes] = Field(default_factory=list, description="Pictures.")
    video: bytes | None = Field(None, description="One video clip.")
    audio: bytes | None = Field(None, description="One audio clip.")


class ComposeForm(Knobs):
    """`POST /compose`: music from a description alone (skips the captioner)."""

    description: str = Field(description="What the music should sound like.")
    lyrics: str | None = Field(
        None,
        description="Words to sing, as written (composers that sing only: `GET /models` says); "
        "section tags such as [verse] and [chorus] on their own lines.",
    )
    audio: bytes | None = Field(None, description="A melody (melody models only).")
