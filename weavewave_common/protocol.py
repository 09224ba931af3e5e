"""Models that cross service boundaries.

The captioner produces a `MusicBrief`; the gateway relays it (headers and `/describe`) and the
composer consumes its `description`. Field limits here are the contract: every producer validates
against them, so a consumer never sees an out-of-range brief.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DESCRIPTION_MAX_CHARS = 600
SECTIONS_MAX = 16
"""Most sections a brief carries (the captioner plans at most its `max_sections`, 8 by
default; an edited brief may split further, up to this)."""


class BriefSource(StrEnum):
    """How the brief was obtained, so clients can tell a structured brief from a fallback."""

    STRUCTURED = "structured"
    """The model's JSON-schema-guided output validated on the first try."""
    RETRIED = "retried"
    """The first structured attempt was invalid; the second one validated."""
    PLAIN_TEXT = "plain_text"
    """Both structured attempts failed; the description is the model's plain text."""


class ImageFacts(BaseModel):
    """What the captioner saw of one image."""

    model_config = ConfigDict(frozen=True)

    filename: str | None = None
    format: str = Field(description="Container format detected from the content, e.g. PNG.")
    width: int = Field(description="Width in pixels as uploaded (after EXIF rotation).")
    height: int = Field(description="Height in pixels as uploaded (after EXIF rotation).")
    used_width: int = Field(description="Width in pixels given to the model.")
    used_height: int = Field(description="Height in pixels given to the model.")


class Span(BaseModel):
    """A stretch of time, seconds."""

    model_config = ConfigDict(frozen=True)

    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)


SPEECH_SPANS_MAX = 200


class VideoFacts(BaseModel):
    """What the captioner saw of the video."""

    model_config = ConfigDict(frozen=True)

    filename: str | None = None
    codec: str
    width: int
    height: int
    duration_s: float = Field(description="Duration of the video stream in seconds.")
    source_fps: float | None = Field(default=None, description="The stream's average frame rate.")
    frames_used: int = Field(description="Frames sampled and given to the model.")
    sampled_fps: float = Field(description="Frames used per second of video.")
    has_audio_track: bool
    audio_track_used: bool = Field(description="Whether the model heard the soundtrack.")
    cuts_found: int | None = Field(
        default=None,
        description="Hard cuts found in the video (None: not looked for, `score=single`); "
        "the sections are these merged to a musician's length.",
    )
    speech: list[Span] | None = Field(
        default=None,
        max_length=SPEECH_SPANS_MAX,
        description="Where people speak in the soundtrack (None: not looked for, or no "
        "soundtrack); a muxed video keeps these and ducks the music under them.",
    )


class AudioFacts(BaseModel):
    """What the captioner did with the uploaded audio clip."""

    model_config = ConfigDict(frozen=True)

    filename: str | None = None
    codec: str
    duration_s: float = Field(description="Seconds of audio decoded (after the length cap).")
    sample_rate: int = Field(description="Sample rate in Hz after resampling.")
    truncated: bool = Field(description="True when the clip was longer than the cap.")
    used: bool = Field(description="Whether the model heard it (only audio-capable models do).")


class MediaFacts(BaseModel):
    """Facts about every input, as decoded."""

    model_config = ConfigDict(frozen=True)

    images: list[ImageFacts] = Field(default_factory=list)
    video: VideoFacts | None = None
    audio: AudioFacts | None = None


class TokenUsage(BaseModel):
    """Tokens spent on the brief, summed over attempts."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = Field(default=0, description="Model calls made (1 to 3).")


class Timings(BaseModel):
    """Where the time went, in seconds."""

    model_config = ConfigDict(frozen=True)

    decode_s: float = Field(description="Decoding and downscaling the media.")
    generate_s: float = Field(description="Prefill and generation in the engine, all attempts.")
    total_s: float


LYRICS_MAX_CHARS = 4000
"""Longest lyrics a brief carries (about ten minutes of song)."""
VOCAL_LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
"""A language a singing composer takes: an ISO 639 code, optionally with a region (`pt-BR`)."""
TIME_SIGNATURE_PATTERN = r"^[1-9][0-9]?/(1|2|4|8|16)$"
"""A time signature a singing composer takes (`4/4`, `6/8`)."""
STYLE_EXCERPT_S = (1.5, 3.0, 4.5)
"""A style excerpt's shortest, default and longest length, seconds (MusicGen-Style's training
range)."""


class Score(StrEnum):
    """How a video is scored."""

    SECTIONS = "sections"
    """In sections that change on the video's cuts (one when it has none)."""
    SINGLE = "single"
    """One piece throughout, as for a picture."""


class Energy(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class BriefSection(BaseModel):
    """One stretch of a video's score: its times in the video (and so in the music) and what
    changes there. Tempo, key and the core instrumentation stay the brief's, so the piece
    stays one piece."""

    model_config = ConfigDict(frozen=True)

    start_s: float = Field(ge=0, description="Where the section starts, seconds.")
    end_s: float = Field(gt=0, description="Where it ends (the next one starts), seconds.")
    description: str = Field(
        min_length=1,
        max_length=DESCRIPTION_MAX_CHARS,
        description="What the music does here, in the brief's catalogue style.",
    )
    mood: str | None = Field(default=None, max_length=60)
    energy: Energy | None = None
    instruments: list[str] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _ends_after_start(self) -> BriefSection:
        if self.end_s <= self.start_s:
            raise ValueError(f"a section ends ({self.end_s}) after it starts ({self.start_s})")
        return self


def check_sections(sections: list[BriefSection]) -> None:
    """Sections tile the piece: the first starts at 0, each starts where the last ended."""
    if sections and sections[0].start_s != 0:
        raise ValueError("the first section starts at 0")
    for before, after in zip(sections, sections[1:], strict=False):
        if abs(after.start_s - before.end_s) > 1e-3:
            raise ValueError(
                f"sections are contiguous: one ends at {before.end_s}, the next starts at "
                f"{after.start_s}"
            )


class MusicBrief(BaseModel):
    """The bridge between what inspired the user and the music model.

    `description` is written in the style of the captions MusicGen was trained on: genre, mood,
    tempo and instruments, one to three sentences, no visual nouns. The structured fields repeat
    that content for clients that want to show or edit it.
    """

    model_config = ConfigDict(frozen=True)

    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX_CHARS)
    genre: str | None = Field(default=None, max_length=60)
    mood: str | None = Field(default=None, max_length=60)
    tempo_bpm: int | None = Field(default=None, ge=30, le=300)
    instruments: list[str] = Field(default_factory=list, max_length=8)
    key: str | None = Field(default=None, max_length=20)
    lyrics: str | None = Field(
        default=None,
        max_length=LYRICS_MAX_CHARS,
        description="A song's words with section tags ([verse], [chorus] …): the user's as "
        "given, or written when vocals were asked for; none for an instrumental.",
    )
    vocal_language: str | None = Field(
        default=None, max_length=16, description="The lyrics' language (ISO 639-1, e.g. `en`)."
    )
    time_signature: str | None = Field(default=None, max_length=8, description="e.g. `4/4`.")
    sections: list[BriefSection] = Field(
        default_factory=list,
        max_length=SECTIONS_MAX,
        description="A video's score in sections that change on its cuts, in order, tiling "
        "the video; empty for one piece throughout.",
    )
    source: BriefSource
    warnings: list[str] = Field(
        default_factory=list, description="Human-readable notes, e.g. why a fallback was used."
    )
    model: str = Field(description="The captioning model that wrote the brief.")
    usage: TokenUsage
    timings: Timings
    media: MediaFacts

    @model_validator(mode="after")
    def _sections_tile(self) -> MusicBrief:
        check_sections(self.sections)
        return self


class Normalize(StrEnum):
    """How the composer sets the level of its audio."""

    PEAK = "peak"
    """The model's own level, peaks limited to -1 dBTP (streams as it is generated)."""
    LOUDNESS = "loudness"
    """The whole clip at -14 LUFS, peaks limited (sent once all of it is generated)."""


NORMALIZE_DESCRIPTION = (
    "`peak` (default): the model's level, peaks limited, streamed as generated; `loudness`: "
    "the whole clip at -14 LUFS, sent once complete."
)


class AudioFormat(StrEnum):
    """Audio formats the composer streams (and the gateway relays)."""

    WAV = "wav"
    FLAC = "flac"
    MP3 = "mp3"
    OGG = "ogg"

    @property
    def media_type(self) -> str:
        return AUDIO_MEDIA_TYPES[self]


AUDIO_MEDIA_TYPES = {
    AudioFormat.WAV: "audio/wav",
    AudioFormat.FLAC: "audio/flac",
    AudioFormat.MP3: "audio/mpeg",
    AudioFormat.OGG: "audio/ogg",
}


class ClipUseFields(BaseModel):
    """The knobs of a clip's use (`audio_use`), one definition for the gateway's forms and the
    composer's: a cover's strength, a repainted span, a style excerpt and its guidance."""

    cover_strength: float = Field(
        1.0, ge=0, le=1, description="audio_use=cover: how closely the music follows the clip."
    )
    repaint_start: float | None = Field(
        None, ge=0, description="audio_use=repaint: the span made anew starts here, seconds."
    )
    repaint_end: float | None = Field(
        None, gt=0, description="audio_use=repaint: and ends here, seconds."
    )
    style_start: float | None = Field(
        None,
        ge=0,
        description="audio_use=style: the excerpt heard starts here, seconds (default: the "
        "excerpt is the clip's middle).",
    )
    style_length: float = Field(
        STYLE_EXCERPT_S[1],
        ge=STYLE_EXCERPT_S[0],
        le=STYLE_EXCERPT_S[2],
        description="audio_use=style: the excerpt's length, seconds (MusicGen-Style's range).",
    )
    text_guidance: float | None = Field(
        None,
        ge=1,
        le=15,
        description="audio_use=style: double classifier-free guidance, the text pushed this "
        "much more than the style (unset: one `guidance` over both).",
    )


SEED_MAX = 2**31 - 1


class SamplingKnobs(BaseModel):
    """How a composer samples, one definition for the gateway's forms and the composer's."""

    seed: int | None = Field(
        None, ge=0, le=SEED_MAX, description="Same seed, same music; random when omitted."
    )
    temperature: float = Field(1.0, ge=0, le=4, description="Sampling temperature (0: greedy).")
    top_k: int = Field(250, ge=0, le=2048, description="Sample from the k likeliest (0: off).")
    top_p: float = Field(0.0, ge=0, le=1, description="Nucleus sampling (0: off).")
    guidance: float = Field(3.0, ge=1, le=15, description="Classifier-free guidance scale.")


ReuseUse = Literal["reference", "cover", "repaint", "continue", "style"]
"""What the composer's `audio` upload is for (a melody comes as `melody` instead)."""


class ComposeFields(SamplingKnobs, ClipUseFields):
    """`POST /v1/compose`'s form, as the gateway sends it and the composer reads it.
    `duration` is capped by the composer's settings and model (its card says), not here."""

    description: str = Field(min_length=1, description="What the music should sound like.")
    duration: float = Field(10.0, gt=0, description="Seconds of audio.")
    format: AudioFormat = Field(AudioFormat.WAV, description="Audio format of the response.")
    normalize: Normalize = Field(Normalize.PEAK, description=NORMALIZE_DESCRIPTION)
    lyrics: str | None = Field(
        None,
        max_length=LYRICS_MAX_CHARS,
        description="Words to sing, with section tags ([verse], [chorus] …); singing models only.",
    )
    vocal_language: str | None = Field(
        None,
        pattern=VOCAL_LANGUAGE_PATTERN,
        description="The lyrics' language (ISO 639 code, e.g. `en`, `fr`); singing models only.",
    )
    bpm: int | None = Field(None, ge=30, le=300, description="Tempo; singing models only.")
    key: str | None = Field(
        None, max_length=20, description="Key, e.g. `C major`; singing models only."
    )
    time_signature: str | None = Field(
        None,
        pattern=TIME_SIGNATURE_PATTERN,
        description="e.g. `4/4`; singing models only.",
    )
    sections: str | None = Field(
        None,
        max_length=SECTIONS_MAX * (DESCRIPTION_MAX_CHARS + 200),
        description='Where the description changes, as JSON: `[{"start_s": 6.0, '
        '"description": "..."}, ...]`, ascending, each inside the duration (the '
        "`description` holds from 0 to the first); models that follow sections only (see "
        "`GET /v1/models`).",
    )
    audio_use: ReuseUse | None = Field(
        None,
        description="What the `audio` upload is for: its timbre (`reference`), a new version "
        "of it (`cover`), it with a span made anew (`repaint`), it as the start of the "
        "music, the rest made after it (`continue`), or the style of an excerpt of it "
        "(`style`); `GET /v1/models` lists what the model can do.",
    )

    def form_fields(self) -> dict[str, str]:
        """The fields that were set, as multipart text (what the composer's form parses)."""
        values = self.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        return {name: f"{v:g}" if isinstance(v, float) else str(v) for name, v in values.items()}


class LaterSection(BaseModel):
    """A section after the first, as the composer takes it: from `start_s` on, `description`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_s: float = Field(gt=0)
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX_CHARS + 200)


class ComposerCard(BaseModel):
    """A model a composer serves, as its `GET /v1/models` tells."""

    name: str
    backend: str
    sample_rate: int
    channels: int
    supports_melody: bool
    sings: bool = False
    """Whether the model sings lyrics (MusicGen does not)."""
    audio_uses: list[str] = []
    """What an `audio` upload can be used for (`reference`, `cover`, `repaint`, `continue`,
    `style`)."""
    max_duration_s: float
    """The longest clip it makes: the smaller of its model's and its service's limits."""
    follows_sections: bool = False
    """Whether it changes its description at section times (a video scored in sections)."""
    loaded: bool


class ComposerCards(BaseModel):
    models: list[ComposerCard]


class CaptionerCard(BaseModel):
    """The model a captioner serves, as its `GET /v1/models` tells."""

    name: str
    hears_audio: bool = Field(description="An audio clip is heard, not only measured.")


class CaptionerCards(BaseModel):
    models: list[CaptionerCard]
