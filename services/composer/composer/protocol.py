"""The compose request as it arrives, checked and turned into frozen generation params."""

from __future__ import annotations

import secrets

from pydantic import ConfigDict

from composer.generation import GenerationParams, Song
from weavewave_common.protocol import SEED_MAX, ComposeFields


class ComposeRequest(ComposeFields):
    """The compose form as it arrives (`ComposeFields`, the contract with the gateway),
    checked and turned into frozen generation params."""

    model_config = ConfigDict(frozen=True)

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
