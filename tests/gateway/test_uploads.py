"""The multipart parser (`gateway/uploads.py`): fields and files through any chunking, each
limit its own clear error, malformed and stalled bodies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.uploads import ParsedForm, UploadLimits, parse_multipart
from tests.media_factory import image_bytes
from weavewave_common.errors import (
    ApiError,
    BadRequest,
    InvalidInput,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMedia,
)

TEXT = frozenset({"prompt", "duration"})


def encoded(
    data: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]] | None = None
) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/", data=data, files=files)
    return request.headers["content-type"], request.read()


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def parse(content_type: str, body: bytes, size: int = 7, **limits: object) -> ParsedForm:
    settings = UploadLimits(text_fields=TEXT, spool_memory_bytes=64, **limits)  # type: ignore[arg-type]
    return asyncio.run(parse_multipart(content_type, pieces(body, size), settings))


def test_fields_and_files_survive_any_chunking() -> None:
    png = image_bytes(32, 24)
    content_type, body = encoded({"prompt": "calm ✓"}, [("images", ("a.png", png, "image/png"))])
    for size in (1, 7, 4096, len(body)):
        form = parse(content_type, body, size)
        assert form.fields == {"prompt": "calm ✓"}
        (upload,) = form.files
        assert (upload.field, upload.filename, upload.size) == ("images", "a.png", len(png))
        assert upload.media_type == "image/png" and upload.file.read() == png
        form.close()


@pytest.mark.parametrize(
    ("data", "files", "limits", "error", "code"),
    [
        ({"secret": "x"}, None, {}, InvalidInput, "unknown_field"),
        ({"prompt": "x" * 9000}, None, {"max_field_chars": 2000}, InvalidInput, "field_too_long"),
        (
            {},
            [("images", ("a.png", b"x" * 500, "image/png"))],
            {"max_image_bytes": 100},
            PayloadTooLarge,
            None,
        ),
        (
            {},
            [("images", ("a.png", b"not an image at all", "image/png"))],
            {},
            UnsupportedMedia,
            None,
        ),
        ({}, [("video", ("a.mp4", b"", "video/mp4"))], {}, InvalidInput, "empty_file"),
        (
            {},
            [("images", ("a.png", image_bytes(8, 8), "image/png"))] * 3,
            {"max_images": 2},
            InvalidInput,
            "too_many_images",
        ),
    ],
)
def test_each_limit_is_its_own_clear_error(
    data: dict[str, str],
    files: object,
    limits: dict[str, int],
    error: type[ApiError],
    code: str | None,
) -> None:
    content_type, body = encoded(data, files)  # type: ignore[arg-type]
    with pytest.raises(error) as raised:
        parse(content_type, body, **limits)
    if code:
        assert raised.value.code == code


def test_lyrics_have_a_cap_of_their_own() -> None:
    """Lyrics run longer than a prompt: their own cap, the other fields' unchanged."""
    words = "la " * 1000  # 3,000 characters
    content_type, body = encoded({"lyrics": words})
    settings = UploadLimits(
        text_fields=frozenset({"prompt", "lyrics"}),
        max_field_chars=2000,
        field_chars=(("lyrics", 4000),),
    )
    form = asyncio.run(parse_multipart(content_type, pieces(body, 7), settings))
    assert form.fields["lyrics"] == words
    content_type, body = encoded({"prompt": words})
    with pytest.raises(InvalidInput) as refused:
        asyncio.run(parse_multipart(content_type, pieces(body, 7), settings))
    assert refused.value.code == "field_too_long"


def test_malformed_bodies_are_400() -> None:
    png = [("images", ("a.png", image_bytes(8, 8), "image/png"))]
    content_type, body = encoded({"prompt": "x"}, png)
    with pytest.raises(BadRequest) as cut:
        parse(content_type, body[:-10])
    assert cut.value.code == "malformed_multipart"
    with pytest.raises(BadRequest) as no_boundary:
        parse("multipart/form-data", body)
    assert no_boundary.value.code == "not_multipart"


def test_a_stalled_body_is_408() -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield b"--b\r\n"
        await asyncio.sleep(5)

    limits = UploadLimits(text_fields=TEXT, idle_timeout_s=0.1)
    with pytest.raises(RequestTimeout):
        asyncio.run(parse_multipart("multipart/form-data; boundary=b", stalls(), limits))


def test_urlencoded_text_fields_are_read_too() -> None:
    form = parse("application/x-www-form-urlencoded", b"prompt=warm+evening&duration=3")
    assert form.fields == {"prompt": "warm evening", "duration": "3"}


def one_field(boundary: str) -> bytes:
    part = 'Content-Disposition: form-data; name="prompt"\r\n\r\nx'
    return f"--{boundary}\r\n{part}\r\n--{boundary}--\r\n".encode()


def test_a_boundary_past_rfc_2046s_70_characters_is_malformed_not_a_crash() -> None:
    """Before: a 300-character boundary reached the parser, which raised outside its own
    error type: a 500 `internal_error`."""
    long = "b" * 300
    with pytest.raises(BadRequest) as refused:
        parse(f"multipart/form-data; boundary={long}", one_field(long))
    assert refused.value.code == "malformed_multipart"
    seventy = "c" * 70  # the longest the RFC allows still parses
    form = parse(f"multipart/form-data; boundary={seventy}", one_field(seventy))
    assert form.fields == {"prompt": "x"}


def test_an_upload_that_drips_is_refused_once_it_falls_under_the_rate() -> None:
    """Before: a body that sent a byte every few seconds (never idle for the whole idle
    timeout) held its slot as long as it liked; sixteen of them locked everyone out."""
    content_type, body = encoded({"prompt": "x" * 200})

    async def drip() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 10):
            await asyncio.sleep(0.1)  # 100 bytes a second
            yield body[start : start + 10]

    limits = UploadLimits(
        text_fields=TEXT, idle_timeout_s=30, min_bytes_per_s=1000, rate_grace_s=0.3
    )
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as refused:
        asyncio.run(parse_multipart(content_type, drip(), limits))
    assert refused.value.code == "upload_too_slow"
    assert time.monotonic() - started < 2  # at once, not at the idle timeout
    fast = UploadLimits(text_fields=TEXT, min_bytes_per_s=100, rate_grace_s=0.3)
    assert asyncio.run(parse_multipart(content_type, drip(), fast)).fields["prompt"]
