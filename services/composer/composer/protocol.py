"""The compose request as it arrives, checked and turned into frozen generation params."""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from composer.generation import GenerationParams, Song
from weavewave_common.protocol import (
    NORMALIZE_DESCRIPTION,
    TIME_SIGNATURE_PATTERN,
    VOCAL_LANGUAGE_PATTERN,
    AudioFormat,
    ClipUseFields,
    Normalize,
)

SEED_MAX = 2**31 - 1
LYRICS_MAX_CHARS = 4000


class ComposeRequest(ClipUseFields):
    """What a client may set. `duration` is capped by the service's settings, not here."""

    model_config = ConfigDict(frozen=True)

    description: str = Field(min_length=1, description="What the music should sound like.")
    duration: float = Field(10.0, gt=0, description="Seconds of audio.")
    format: AudioFormat = Field(AudioFormat.WAV, description="Audio format of the response.")
    seed: int | None = Field(
        None, ge=0, le=SEED_MAX, description="Same seed, same audio; random when omitted."
    )
    temperature: float = Field(1.0, ge=0, le=4, description="Sampling temperature (0: greedy).")
    top_k: int = Field(250, ge=0, le=2048, description="Sample from the k likeliest (0: off).")
    top_p: float = Field(0.0, ge=0, le=1, description="Nucleus sampling (0: off).")
    guidance: float = Field(3.0, ge=1, le=15, description="Classifier-free guidance scale.")
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
    audio_use: Literal["reference", "cover", "repaint", "continue", "style"] | None = Field(
        None,
        description="What the `audio` upload is for: its timbre (`reference`), a new version "
        "of it (`cover`), it with a span made anew (`repaint`), it as the start of the "
        "music, the rest made after it (`continue`), or the style of an excerpt of it "
        "(`style`); `GET /v1/models` lists what the model can do.",
    )

    @property
    def song(self) -> Song | None:
        """What a singing model is given; None when no song field was set."""
        fields = (self.lyrics, self.vocal_language, self.bpm, self.key, self.time_signature)
        if all(field is None for field in fields):
            return None
        return Song(
            lyrics=(self.lyrics or "").replace("\r\n", "\n"),
            vocal_language=self.vocal_language or "en",
            bpm=self.bpm,
            key=self.key,
            time_signature=self.time_signature,
        )

    def to_params(self) -> GenerationParams:
        """Frozen per-request params; a missing seed is drawn here so it can be reported."""
        return GenerationParams(
            duration_s=self.duration,
            seed=self.seed if self.seed is not None else secrets.randbelow(SEED_MAX),
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            guidance=self.guidance,
            text_guidance=self.text_guidance if self.audio_use == "style" else None,
        )


class ModelCard(BaseModel):
    """A model the composer serves."""

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
    loaded: bool


class ModelList(BaseModel):
    models: list[ModelCard]
