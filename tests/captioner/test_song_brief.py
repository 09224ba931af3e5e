"""Briefs for songs: lyrics written when vocals are asked for (sized to the song, in the
user's language), the user's own lyrics kept exactly, none for an instrumental; driven through
the real `Describer` by a scripted engine (the tiny VLM writes no valid JSON)."""

from __future__ import annotations

import asyncio
import json

import pytest

from captioner.describe import DescribeInput, DescribeLimits, Describer
from captioner.media import MediaLimits
from captioner.prompts import (
    BRIEF_JSON_SCHEMA,
    SONG_JSON_SCHEMA,
    SUNG_JSON_SCHEMA,
    SongRequest,
)
from tests.captioner.test_brief_chain import PLAIN, ScriptedEngine
from tests.captioner.test_brief_parsing import VALID
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import LYRICS_MAX_CHARS, BriefSource, MusicBrief

WRITTEN = "[verse]\nLanterns in the rain tonight\nWe walk until the morning light\n[chorus]\nStay"
SONG = {**VALID, "lyrics": WRITTEN, "vocal_language": "en", "time_signature": "4/4"}
SUNG = {**VALID, "vocal_language": "fr", "time_signature": "3/4"}
GIVEN = "  [verse]\nSous la pluie,   on danse encore\n\n[chorus]\nEncore, encore  "


def brief_from(engine: ScriptedEngine, request: DescribeInput) -> MusicBrief:
    describer = Describer(engine, MediaLimits(), DescribeLimits())
    return asyncio.run(describer.describe(request, "req-1"))


def prompt_text(engine: ScriptedEngine, attempt: int = 0) -> str:
    content = engine.requests[attempt].messages[1]["content"]
    assert isinstance(content, list)
    return "\n".join(str(part.get("text", "")) for part in content)


def test_vocals_get_written_lyrics_sized_to_the_song() -> None:
    engine = ScriptedEngine(json.dumps(SONG))
    request = DescribeInput(prompt="a rainy night walk", vocals=True, duration_s=180)
    brief = brief_from(engine, request)
    assert brief.source is BriefSource.STRUCTURED
    assert (brief.lyrics, brief.vocal_language, brief.time_signature) == (WRITTEN, "en", "4/4")
    assert engine.requests[0].json_schema == SONG_JSON_SCHEMA
    text = prompt_text(engine)
    assert "song with vocals, about 180 seconds" in text and "about 48 short lines" in text
    assert "language the user wrote in" in text


def test_the_users_lyrics_are_kept_exactly_and_not_rewritten() -> None:
    engine = ScriptedEngine(json.dumps(SUNG))
    brief = brief_from(engine, DescribeInput(lyrics=GIVEN))  # lyrics alone are an input
    assert brief.lyrics == GIVEN  # whitespace and all
    assert (brief.vocal_language, brief.time_signature) == ("fr", "3/4")
    assert engine.requests[0].json_schema == SUNG_JSON_SCHEMA
    assert "lyrics" not in SUNG_JSON_SCHEMA["properties"]  # the model cannot rewrite them
    assert "Sous la pluie" in prompt_text(engine)


def test_only_line_endings_are_made_plain() -> None:
    crlf = GIVEN.replace("\n", "\r\n")  # as a browser sends a textarea
    brief = brief_from(ScriptedEngine(json.dumps(SUNG)), DescribeInput(lyrics=crlf))
    assert brief.lyrics == GIVEN


def test_the_users_lyrics_survive_the_plain_text_fallback() -> None:
    brief = brief_from(ScriptedEngine("{", "nope", PLAIN), DescribeInput(lyrics=GIVEN))
    assert brief.source is BriefSource.PLAIN_TEXT and brief.lyrics == GIVEN


def test_vocals_without_a_valid_song_say_so() -> None:
    engine = ScriptedEngine(json.dumps(VALID), json.dumps(VALID), PLAIN)  # no lyrics in them
    brief = brief_from(engine, DescribeInput(prompt="sing to me", vocals=True))
    assert brief.lyrics is None
    assert any("no lyrics were written" in w for w in brief.warnings)
    assert "about 30 seconds" in prompt_text(engine)  # no length given: 30 s


def test_an_instrumental_brief_has_no_lyrics() -> None:
    engine = ScriptedEngine(json.dumps(VALID))
    brief = brief_from(engine, DescribeInput(prompt="calm piano"))
    assert brief.lyrics is None and brief.vocal_language is None
    assert engine.requests[0].json_schema == BRIEF_JSON_SCHEMA
    assert "vocals" not in prompt_text(engine)


def test_lyrics_past_the_cap_are_a_422() -> None:
    describer = Describer(ScriptedEngine(), MediaLimits(), DescribeLimits())
    with pytest.raises(InvalidInput) as refused:
        describer.check(DescribeInput(lyrics="la " * LYRICS_MAX_CHARS))
    assert refused.value.code == "lyrics_too_long"


@pytest.mark.parametrize(("seconds", "lines"), [(10, 4), (60, 16), (600, 160)])
def test_lines_follow_the_length(seconds: float, lines: int) -> None:
    assert SongRequest(seconds=seconds).lines == lines
