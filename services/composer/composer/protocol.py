"""The compose request as it arrives, checked and turned into frozen generation params."""

from __future__ import annotations

import secrets

from pydantic import BaseModel, ConfigDict, Field

from composer.backends import GenerationParams
from weavewave_common.protocol import NORMALIZE_DESCRIPTION, AudioFormat, Normalize

SEED_MAX = 2**31 - 1


class ComposeRequest(BaseModel):
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

    def to_params(self) -> GenerationParams:
        """Frozen per-request params; a missing seed is drawn here so it can be reported."""
        return GenerationParams(
            duration_s=self.duration,
            seed=self.seed if self.seed is not None else secrets.randbelow(SEED_MAX),
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            guidance=self.guidance,
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
    max_duration_s: float
    loaded: bool


class ModelList(BaseModel):
    models: list[ModelCard]
