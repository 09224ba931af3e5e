"""The generator (`gateway/generate.py`) runs a parsed request: what reaches the composer. The
composer is a mock transport that answers as a real one does and keeps what it was sent."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl

import httpx
import pytest

from gateway.composers import Composers
from gateway.generate import Generator
from gateway.jobs.model import JobForm
from gateway.request import DurationLimits, Entry, MusicRequests
from gateway.uploads import ParsedForm, UploadLimits
from gateway.upstream import CaptionerClient, ComposerClient
from tests.gateway.upstreams import pool, streamed
from weavewave_common.errors import InvalidInput
from weavewave_common.protocol import ComposerCard, ComposerCards

SINGER = ComposerCard(
    name="ace-step",
    backend="diffusers",
    sample_rate=48000,
    channels=2,
    supports_melody=False,
    sings=True,
    max_duration_s=600,
    loaded=True,
)


def generator_and_sent(card: ComposerCard = SINGER) -> tuple[Generator, list[bytes]]:
    sent: list[bytes] = []

    def composer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=ComposerCards(models=[card]).model_dump(mode="json"))
        sent.append(request.read())
        return streamed([b"RIFF"])

    requests = MusicRequests(
        Composers({"ace-step": ComposerClient(pool(composer), 30)}), DurationLimits(10, 120)
    )
    captioner = CaptionerClient(pool(lambda _: httpx.Response(503)), 0, 30)
    return Generator(captioner, requests, UploadLimits()), sent


def fields_of(body: bytes) -> dict[str, str]:
    """The composer's form fields (a form without files goes urlencoded)."""
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def composed(generator: Generator, form: dict[str, str]) -> None:
    async def run() -> None:
        request = await generator.requests.parse(ParsedForm(fields=form), Entry.GENERATE)
        stream = await generator.generate(request, "rid")
        await stream.close()

    asyncio.run(run())


def test_an_edited_brief_reaches_the_composer_whole() -> None:
    """Before: an edited brief could travel only as its description, so the captioner's
    lyrics, tempo, key and time signature were dropped and a song came out instrumental."""
    generator, sent = generator_and_sent()
    brief = {
        "description": "a warm folk ballad, slow and close",
        "lyrics": "[verse]\nthe river knows my name",
        "vocal_language": "en",
        "tempo_bpm": 72,
        "key": "G major",
        "time_signature": "3/4",
        "source": "structured",  # the rest of /describe's answer may come back as it was
    }
    composed(generator, {"brief": json.dumps(brief), "duration": "20"})
    fields = fields_of(sent[0])
    assert fields["description"] == brief["description"]
    assert fields["lyrics"] == brief["lyrics"]
    assert (fields["bpm"], fields["key"], fields["time_signature"]) == ("72", "G major", "3/4")
    assert fields["vocal_language"] == "en"


def test_a_brief_is_one_or_the_other_and_checked() -> None:
    generator, _ = generator_and_sent()
    both = {"brief": json.dumps({"description": "x"}), "description": "y"}
    for form, code in [
        (both, "brief_and_description"),
        ({"brief": "{not json"}, "invalid_brief"),
        ({"brief": json.dumps({"lyrics": "la"})}, "invalid_brief"),  # no description
    ]:
        with pytest.raises(InvalidInput) as refused:
            asyncio.run(generator.requests.parse(ParsedForm(fields=form), Entry.GENERATE, JobForm))
        assert refused.value.code == code
    plain = SINGER.model_copy(update={"sings": False, "name": "musicgen"})
    instrumental, _ = generator_and_sent(plain)
    sung = {"brief": json.dumps({"description": "x", "lyrics": "[verse]\nla"})}
    with pytest.raises(InvalidInput) as refused:
        asyncio.run(instrumental.requests.parse(ParsedForm(fields=sung), Entry.GENERATE))
    assert refused.value.code == "vocals_unsupported"
