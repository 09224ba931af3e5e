"""Validation of what the model writes, and the tidying of descriptions."""

from __future__ import annotations

import json

from captioner.brief import parse_brief, tidy_description

VALID = {
    "description": "Warm lofi hip hop with dusty drums and mellow electric piano, 80 BPM.",
    "genre": "lofi hip hop",
    "mood": "calm",
    "tempo_bpm": 80,
    "instruments": ["drums", "electric piano"],
    "key": "F minor",
}


def test_a_valid_brief_parses() -> None:
    fields = parse_brief(json.dumps(VALID))
    assert fields is not None
    assert fields.tempo_bpm == 80
    assert fields.instruments == ["drums", "electric piano"]


def test_control_characters_inside_strings_are_tolerated_then_removed() -> None:
    text = json.dumps(VALID).replace("Warm", "Warm\\u0007\\t").replace("\\u0007", "\x07")
    fields = parse_brief(text)
    assert fields is not None
    assert "\x07" not in fields.description and "\t" not in fields.description


def test_invalid_briefs_are_rejected() -> None:
    assert parse_brief("") is None
    assert parse_brief('{"description": "unfinished') is None
    assert parse_brief(json.dumps({**VALID, "tempo_bpm": 999})) is None
    assert parse_brief(json.dumps({**VALID, "instruments": []})) is None
    assert parse_brief(json.dumps({**VALID, "extra": 1})) is None
    assert parse_brief(json.dumps({**VALID, "description": "   \x01\x02   " * 10})) is None


def test_descriptions_are_cut_to_three_sentences_on_one_line() -> None:
    text = "One.\nTwo!  Three? Four. Five."
    assert tidy_description(text) == "One. Two! Three?"
    assert tidy_description("\ufffd\ufffdsoft\x00 strings ") == "soft strings"
    assert len(tidy_description("x" * 5000)) == 600
