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


SECTION = {
    "description": "Sparse piano alone, hushed.",
    "mood": "still",
    "energy": "low",
    "instruments": ["piano"],
}


def test_a_valid_brief_parses() -> None:
    parsed = parse_brief(json.dumps(VALID))
    assert parsed is not None
    fields, sections = parsed
    assert sections == []
    assert fields.tempo_bpm == 80
    assert fields.instruments == ["drums", "electric piano"]


def test_control_characters_inside_strings_are_tolerated_then_removed() -> None:
    text = json.dumps(VALID).replace("Warm", "Warm\\u0007\\t").replace("\\u0007", "\x07")
    parsed = parse_brief(text)
    assert parsed is not None
    fields = parsed[0]
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


def test_sections_asked_for_come_back_exactly_so_many() -> None:
    loud = {**SECTION, "energy": "high", "description": "Full drums and brass.\nDriving."}
    parsed = parse_brief(json.dumps({**VALID, "sections": [SECTION, loud]}), sections=2)
    assert parsed is not None
    assert [s.energy for s in parsed[1]] == ["low", "high"]
    assert parsed[1][1].description == "Full drums and brass. Driving."
    assert parse_brief(json.dumps({**VALID, "sections": [SECTION]}), sections=2) is None
    assert parse_brief(json.dumps(VALID), sections=2) is None
    bad_energy = {**SECTION, "energy": "extreme"}
    assert parse_brief(json.dumps({**VALID, "sections": [SECTION, bad_energy]}), sections=2) is None
    # sections not asked for are an extra field, as before
    assert parse_brief(json.dumps({**VALID, "sections": [SECTION]})) is None
    assert parse_brief(json.dumps([VALID]), sections=1) is None


def test_a_sectioned_briefs_tempo_puts_the_cuts_on_beats_and_says_so() -> None:
    from captioner.describe import _on_the_cuts
    from captioner.prompts import BriefFields

    fields = BriefFields.model_validate({**VALID, "tempo_bpm": 100})
    fields = fields.model_copy(update={"description": "Warm lofi beat at 100 bpm, soft keys."})
    warnings: list[str] = []
    moved = _on_the_cuts(fields, ((0.0, 6.0), (6.0, 12.5), (12.5, 19.0)), warnings)
    assert moved.tempo_bpm != 100 and f"{moved.tempo_bpm} BPM" in moved.description
    assert warnings and "2 of 2 section starts on a beat" in warnings[0]
    kept = _on_the_cuts(fields, ((0.0, 19.0),), [])
    assert kept is fields
