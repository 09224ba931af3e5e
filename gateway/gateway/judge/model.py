"""The judge's API types (named, so generated clients get named classes)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.judge.rhythm import TempoAgreement
from gateway.judge.tonality import KeyAgreement


class AnalysisAsked(BaseModel):
    """What the audio was meant to be (each optional): the answer says how it agrees."""

    tempo_bpm: float | None = Field(None, ge=30, le=300, description="The tempo asked, BPM.")
    key: str | None = Field(
        None, max_length=20, description='The key asked, e.g. "A minor", "F# major", "Bbm".'
    )
    duration: float | None = Field(None, gt=0, le=3600, description="The length asked, seconds.")


class AnalysisForm(AnalysisAsked):
    """`POST /analyze`: one audio file, and optionally what it was meant to be."""

    audio: bytes = Field(description="The audio to measure (any common format).")


class TempoMeasure(BaseModel):
    bpm: float | None = Field(description="Measured; null when no steady beat was heard.")
    beats: int = Field(description="Beats tracked.")
    asked_bpm: float | None = None
    agreement: TempoAgreement | None = Field(
        None, description="match (within 4 %), double, half or off; null when not asked."
    )


class KeyMeasure(BaseModel):
    key: str | None = Field(description='Measured, e.g. "A minor" (sharps); null when atonal.')
    confidence: float = Field(description="The key profile's correlation with the chroma, -1..1.")
    asked: str | None = Field(None, description="The key asked, as understood.")
    agreement: KeyAgreement | None = Field(
        None, description="match, relative, parallel or off; null when not asked or unknown."
    )


class LevelMeasure(BaseModel):
    integrated_lufs: float | None = Field(description="BS.1770; null for silence.")
    true_peak_dbtp: float | None = Field(description="4x oversampled; null for silence.")
    rms_dbfs: float | None = Field(description="null for silence.")


class Flaws(BaseModel):
    silent: bool = Field(description="RMS under -60 dBFS.")
    clipped: bool = Field(description="More than one sample in a thousand at full scale.")
    clipped_share: float
    loop_s: float | None = Field(
        description="The period of a stuck loop (the take repeating itself), seconds; null if none."
    )


class Analysis(BaseModel):
    """What a piece of audio measures, and how that agrees with what was asked."""

    duration_s: float
    asked_duration_s: float | None = None
    duration_error_s: float | None = Field(None, description="Measured minus asked.")
    tempo: TempoMeasure
    key: KeyMeasure
    level: LevelMeasure
    flaws: Flaws
    score: float = Field(
        0.0,
        ge=0,
        le=1,
        description="How well it fits what was asked, 0..1: the weighted mean of `score_parts` "
        "(GATEWAY_JUDGE_WEIGHTS); 0 for silence.",
    )
    score_parts: dict[str, float] = Field(
        default_factory=dict,
        description="Each part's credit, 0..1: `tempo` and `key` (when asked), `duration` (when "
        "a length was asked), `cleanliness` (clipping and a stuck loop cost).",
    )
    seconds_taken: float = Field(description="CPU seconds the measures took.")
