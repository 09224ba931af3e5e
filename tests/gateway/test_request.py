"""The request parsed once (`gateway/request.py`): typed, checked against the chosen composer's
card before any upstream works, and written to the composer's form in one place. The composer
here is a mock transport answering `/v1/models` as a real one does."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import pytest

from gateway.composers import Composers
from gateway.protocol import AudioUse
from gateway.request import DurationLimits, Entry, MusicRequest, MusicRequests, parse_duration
from gateway.sections import PieceFacts, realised
from gateway.uploads import FormFile, ParsedForm
from gateway.upstream import ComposerClient
from tests.gateway.upstreams import pool
from tests.media_factory import video_bytes
from weavewave_common.errors import InvalidInput, UnsupportedMedia
from weavewave_common.protocol import BriefSection, ComposerCard, ComposerCards, Energy

CARD = ComposerCard(
    name="stable-audio-open",
    backend="diffusers",
    sample_rate=44100,
    channels=2,
    supports_melody=False,
    audio_uses=[],
    max_duration_s=47.55,
    loaded=True,
)


def requests(card: ComposerCard = CARD) -> MusicRequests:
    body = ComposerCards(models=[card]).model_dump(mode="json")
    client = ComposerClient(pool(lambda _: httpx.Response(200, json=body)), 30)
    return MusicRequests(Composers({"sao": client}), DurationLimits(default_s=10, max_s=120))


def parsed(fields: dict[str, str], entry: Entry = Entry.GENERATE, **files: bytes) -> MusicRequest:
    parts = [
        FormFile(file=io.BytesIO(data), filename=name, field=name) for name, data in files.items()
    ]
    form = ParsedForm(fields=fields, files=parts)
    return asyncio.run(requests().parse(form, entry))


def refusal(fields: dict[str, str], entry: Entry = Entry.GENERATE) -> str:
    with pytest.raises(InvalidInput) as refused:
        parsed(fields, entry)
    return refused.value.code


def test_the_duration_is_parsed_once_into_seconds_auto_or_nothing() -> None:
    assert parse_duration("12.5") == 12.5
    assert parse_duration("auto") == "auto"
    assert parse_duration(None) is None and parse_duration(" ") is None
    with pytest.raises(InvalidInput):
        parse_duration("soon")


def test_a_duration_is_checked_against_the_gateway_and_the_chosen_composer() -> None:
    assert parsed({"prompt": "rain", "duration": "40"}).duration == 40.0
    assert refusal({"prompt": "rain", "duration": "48"}) == "duration_out_of_range"  # its card
    assert refusal({"prompt": "rain", "duration": "121"}) == "duration_out_of_range"  # ours
    assert refusal({"description": "rain", "duration": "60"}, Entry.COMPOSE) == (
        "duration_out_of_range"
    )
    request = parsed({"prompt": "rain", "duration": "auto"})
    assert request.duration_s(video_s=300.0) == 47.55  # the video's length, capped by the card
    assert parsed({"prompt": "rain"}).duration_s(None) == 10.0
    assert parsed({"prompt": "rain", "duration": "", "seed": ""}).duration_s(None) == 10.0


VIDEO = video_bytes(seconds=0.5)


def test_a_video_that_cannot_be_muxed_is_refused_at_parse() -> None:
    webm = video_bytes(seconds=0.5, codec="libvpx", container_format="webm")
    with pytest.raises(UnsupportedMedia) as refused:
        parsed({"mux": "true"}, video=webm)
    assert refused.value.code == "video_not_muxable"
    assert parsed({"format": "mp3"}, video=webm).knobs.mux is False  # the music alone: fine


def test_everything_that_needs_no_model_is_refused_at_parse() -> None:
    assert refusal({}) == "empty_request"
    assert refusal({"prompt": "x", "model": "nobody"}) == "unknown_model"
    assert refusal({"prompt": "x", "mux": "true"}) == "mux_without_video"
    assert refusal({"prompt": "x", "vocals": "true"}) == "vocals_unsupported"
    assert refusal({"duration": "5"}, Entry.COMPOSE) == "empty_description"
    assert refusal({"prompt": "x", "temperature": "9"}) == "invalid_input"


def test_the_composers_form_is_written_in_one_place() -> None:
    request = parsed({"prompt": "rain", "seed": "7", "format": "mp3", "top_k": "50"})
    fields = request.to_compose_request("soft rain", 12.0, {}, None).form_fields()
    assert fields == {
        "description": "soft rain",
        "duration": "12",
        "format": "mp3",
        "normalize": "peak",
        "seed": "7",
        "temperature": "1",
        "top_k": "50",
        "top_p": "0",
        "guidance": "3",
    }
    muxed = parsed({"mux": "true", "cover_strength": "0.4"}, video=VIDEO, audio=b"a")
    fields = muxed.to_compose_request("x", 8.25, {"lyrics": "la"}, AudioUse.COVER).form_fields()
    assert (fields["format"], fields["normalize"], fields["duration"]) == (
        "wav",
        "loudness",
        "8.25",
    )
    assert (fields["audio_use"], fields["cover_strength"], fields["lyrics"]) == (
        "cover",
        "0.4",
        "la",
    )
    assert "style_length" not in fields  # only the knobs of the clip's own use
    melody = muxed.to_compose_request("x", 5.0, {}, AudioUse.MELODY).form_fields()
    assert "audio_use" not in melody  # a melody goes as `melody`, with no use named


def test_sections_go_to_a_composer_that_follows_them_and_are_refused_by_one_that_cannot() -> None:
    sections = [
        BriefSection(start_s=0, end_s=6, description="Hushed piano.", energy=Energy.LOW),
        BriefSection(
            start_s=6, end_s=14, description="Drums enter", mood="urgent", instruments=["drums"]
        ),
        BriefSection(start_s=14, end_s=20, description="Brass fanfare."),
    ]
    piece = PieceFacts(tempo_bpm=96, key="D minor")
    # a composer that cannot follow them gets one piece; asking for sections is refused
    assert refusal({"prompt": "x", "score": "sections"}) == "sections_unsupported"
    one_piece = parsed({"prompt": "x"})
    assert not one_piece.in_sections
    assert one_piece.captioner_fields(hear=True)["score"] == "single"
    assert "sections" not in one_piece.to_compose_request("x", 20, {}, None, sections).form_fields()

    following = CARD.model_copy(update={"follows_sections": True})
    form = ParsedForm(fields={"prompt": "x"}, files=[])
    request = asyncio.run(requests(following).parse(form, Entry.GENERATE))
    assert request.in_sections and request.captioner_fields(hear=True)["score"] == "sections"
    fields = request.to_compose_request("whole", 20, {}, None, sections, piece).form_fields()
    assert fields["description"] == "Hushed piano. Low energy. 96 BPM. In D minor."
    assert json.loads(fields["sections"]) == [
        {"start_s": 6.0, "description": "Drums enter. Urgent. Drums. 96 BPM. In D minor."},
        {"start_s": 14.0, "description": "Brass fanfare. 96 BPM. In D minor."},
    ]
    # music shorter than the video: only the sections that start inside it
    short = request.to_compose_request("whole", 10, {}, None, sections, piece).form_fields()
    assert [s["start_s"] for s in json.loads(short["sections"])] == [6.0]
    assert "sections" not in request.to_compose_request("w", 5, {}, None, sections).form_fields()


def test_sections_as_the_audio_realised_them() -> None:
    sections = [
        BriefSection(start_s=0, end_s=6.01, description="a"),
        BriefSection(start_s=6.01, end_s=9, description="b"),
    ]
    timed = realised(sections, "0.000,6.000", 9.5)
    assert [(s.start_s, s.end_s) for s in timed] == [(0, 6.0), (6.0, 9.5)]
