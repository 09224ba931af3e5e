"""A brief's sections, as the composer is given them and as the audio realises them.

Each section's text is its own description, mood, energy and instruments, followed by what
holds through the whole piece (tempo, key), so every section is written for the same piece:
the composer changes its description at each section's start and goes on from its own audio.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from weavewave_common.protocol import BriefSection, LaterSection

MIN_SECTION_S = 0.1
"""A section starting closer than this to the music's end is left out (the composer refuses
shorter ones)."""


class PieceFacts(BaseModel):
    """What holds through every section (a brief's, or an edited brief's)."""

    tempo_bpm: int | None = None
    key: str | None = None


def section_text(section: BriefSection, piece: PieceFacts) -> str:
    """One section's description for the composer."""
    parts = [section.description.rstrip(". ") + "."]
    colour = [section.mood, f"{section.energy.value} energy" if section.energy else None]
    if any(colour):
        parts.append(", ".join(c for c in colour if c).capitalize() + ".")
    if section.instruments:
        parts.append(", ".join(section.instruments).capitalize() + ".")
    if piece.tempo_bpm:
        parts.append(f"{piece.tempo_bpm} BPM.")
    if piece.key:
        parts.append(f"In {piece.key}.")
    return " ".join(parts)


def composer_sections(
    sections: list[BriefSection], piece: PieceFacts, duration_s: float
) -> tuple[str, str] | None:
    """(the first section's text, the later ones as the composer's `sections` JSON) for music
    of `duration_s`; None when fewer than two sections start inside it."""
    inside = [s for s in sections if s.start_s == 0 or s.start_s <= duration_s - MIN_SECTION_S]
    if len(inside) < 2:
        return None
    later = [
        LaterSection(start_s=s.start_s, description=section_text(s, piece)).model_dump()
        for s in inside[1:]
    ]
    return section_text(inside[0], piece), json.dumps(later, separators=(",", ":"))


def realised(sections: list[BriefSection], header: str, duration_s: float) -> list[BriefSection]:
    """The sections with the times the audio has (`X-Sections`: each start on the codec's
    frames), the last ending with the music."""
    starts = [float(t) for t in header.split(",") if t.strip()][: len(sections)]
    kept = sections[: len(starts)]
    ends = [*starts[1:], duration_s]
    return [
        s.model_copy(update={"start_s": a, "end_s": b})
        for s, a, b in zip(kept, starts, ends, strict=True)
    ]
