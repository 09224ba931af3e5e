"""The compose request as it arrives, checked and turned into frozen generation params."""

from __future__ import annotations

import json
import secrets

from pydantic import ConfigDict, TypeAdapter, ValidationError

from composer.generation import GenerationParams, Section, Song
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import SECTIONS_MAX, SEED_MAX, ComposeFields, LaterSection

MIN_SECTION_S = 0.1
"""Sections closer than this are refused: shorter than a few codec frames, they are a typo."""
_SECTIONS = TypeAdapter(list[LaterSection])


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

    def later_sections(self) -> tuple[Section, ...]:
        """`sections` parsed and checked: ascending, each inside the duration, at least
        `MIN_SECTION_S` after the one before; 422 `sections_invalid` otherwise."""
        if not self.sections:
            return ()
        try:
            parsed = _SECTIONS.validate_python(json.loads(self.sections))
        except (ValueError, ValidationError) as exc:
            raise InvalidInput(
                'sections: a JSON list of {"start_s": seconds, "description": text}.',
                code="sections_invalid",
            ) from exc
        if len(parsed) >= SECTIONS_MAX:
            raise InvalidInput(
                f"sections: at most {SECTIONS_MAX - 1} after the first.", code="sections_invalid"
            )
        starts = [0.0, *(s.start_s for s in parsed)]
        gaps_ok = all(b - a >= MIN_SECTION_S for a, b in zip(starts, starts[1:], strict=False))
        if not gaps_ok or starts[-1] > self.duration - MIN_SECTION_S:
            raise InvalidInput(
                f"sections: start times ascending, at least {MIN_SECTION_S:g} s apart and "
                f"inside the duration ({self.duration:g} s).",
                code="sections_invalid",
            )
        return tuple(Section(s.start_s, " ".join(s.description.split())) for s in parsed)

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
