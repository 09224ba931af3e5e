"""What a singing composer is handed of a brief: its lyrics and the metadata it can read."""

from __future__ import annotations

from typing import Any

from gateway.song import song_fields
from weavewave_common.protocol import BriefSource, MediaFacts, MusicBrief, Timings, TokenUsage


def brief(**fields: Any) -> MusicBrief:
    return MusicBrief(
        description="folk ballad, warm voice",
        source=BriefSource.STRUCTURED,
        model="tiny",
        usage=TokenUsage(),
        timings=Timings(decode_s=0, generate_s=0, total_s=0),
        media=MediaFacts(),
        **fields,
    )


def test_an_instrumental_brief_gives_no_song() -> None:
    assert song_fields(brief(tempo_bpm=90, key="A minor")) == {}


def test_a_song_brief_gives_its_lyrics_and_metadata() -> None:
    song = brief(
        lyrics="[verse]\nla", vocal_language="fr", tempo_bpm=90, key="A minor", time_signature="3/4"
    )
    assert song_fields(song) == {
        "lyrics": "[verse]\nla",
        "vocal_language": "fr",
        "bpm": "90",
        "key": "A minor",
        "time_signature": "3/4",
    }


def test_metadata_the_composer_cannot_read_is_left_out() -> None:
    odd = brief(lyrics="[verse]\nla", vocal_language="French!", time_signature="common")
    assert song_fields(odd) == {"lyrics": "[verse]\nla"}
