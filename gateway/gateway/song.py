"""What a singing composer is given of a song: the brief's lyrics and metadata, as form fields.

The brief is the captioner's (or the user's own lyrics, kept as given); only values the composer
accepts are passed on — a time signature it cannot read or an unknown language code is left out
(the composer then uses its defaults) rather than failing the whole request after the brief was
paid for.
"""

from __future__ import annotations

import re
from typing import Protocol

from weavewave_common.protocol import TIME_SIGNATURE_PATTERN, VOCAL_LANGUAGE_PATTERN

TIME_SIGNATURE = re.compile(TIME_SIGNATURE_PATTERN)
LANGUAGE = re.compile(VOCAL_LANGUAGE_PATTERN)


class SongSource(Protocol):
    """What a brief says of a song: the captioner's `MusicBrief`, or one sent back edited."""

    @property
    def lyrics(self) -> str | None: ...
    @property
    def vocal_language(self) -> str | None: ...
    @property
    def tempo_bpm(self) -> int | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def time_signature(self) -> str | None: ...


def song_fields(brief: SongSource) -> dict[str, str]:
    """The composer's song fields for `brief` (empty for an instrumental brief)."""
    if not brief.lyrics:
        return {}
    fields = {"lyrics": brief.lyrics}
    if brief.vocal_language and LANGUAGE.match(brief.vocal_language):
        fields["vocal_language"] = brief.vocal_language
    if brief.tempo_bpm is not None:
        fields["bpm"] = str(brief.tempo_bpm)
    if brief.key:
        fields["key"] = brief.key
    if brief.time_signature and TIME_SIGNATURE.match(brief.time_signature.strip()):
        fields["time_signature"] = brief.time_signature.strip()
    return fields
