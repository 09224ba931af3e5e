"""The gateway's parts on their own, in seconds: the multipart parser, the upstream clients'
error mapping and retries, the relay, and capacity. Upstreams here are httpx mock transports
that answer what a real service would in the case at hand (or fail as no live one can be made
to on cue)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from gateway import metrics
from gateway.capacity import Capacity
from gateway.relay import relay
from gateway.replicas import ReplicaPool
from gateway.uploads import ParsedForm, UploadLimits, parse_multipart
from gateway.upstream import CaptionerClient, ComposerClient
from tests.media_factory import image_bytes
from weavewave_common.errors import (
    ApiError,
    BadGateway,
    BadRequest,
    InvalidInput,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    UnsupportedMedia,
)
from weavewave_common.protocol import ComposeFields

TEXT = frozenset({"prompt", "duration"})

A_REQUEST = ComposeFields(description="x")


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


# -- the multipart parser ------------------------------------------------------------------


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


# -- the upstream clients ------------------------------------------------------------------


Handler = Callable[[httpx.Request], httpx.Response]


def pool(*handlers: Handler) -> ReplicaPool:
    """One replica per handler, at http://up0, http://up1, ..."""
    by_url = {f"http://up{i}": handler for i, handler in enumerate(handlers)}

    def make(url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(by_url[url]), base_url=url)

    return ReplicaPool("upstream", list(by_url), make)


def envelope(status: int, code: str, retry: str | None = None) -> httpx.Response:
    headers = {"retry-after": retry} if retry else None
    body = {"error": {"code": code, "message": f"{code} happened"}}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("answer", "error", "status", "code"),
    [
        (envelope(422, "empty_request"), ApiError, 422, "empty_request"),  # the user's: passed on
        (envelope(413, "payload_too_large"), ApiError, 413, "payload_too_large"),
        (envelope(503, "busy", "7"), TooManyRequests, 429, "busy"),  # too much work: back off
        (envelope(503, "queue_full"), TooManyRequests, 429, "busy"),
        (
            envelope(500, "internal_error"),
            BadGateway,
            502,
            "upstream_failed",
        ),  # its bug: no details
        (httpx.Response(502, text="<html>proxy</html>"), ServiceUnavailable, 503, None),
        (httpx.Response(418, text="teapot"), ApiError, 418, "upstream_error"),
    ],
)
def test_upstream_errors_become_the_clients_errors(
    answer: httpx.Response, error: type[ApiError], status: int, code: str | None
) -> None:
    async def call() -> None:
        upstream = pool(lambda _: answer)
        try:
            await ComposerClient(upstream, 30).open_stream(
                ComposeFields(description="x"), None, "rid"
            )
        finally:
            await upstream.aclose()

    with pytest.raises(error) as raised:
        asyncio.run(call())
    assert raised.value.status == status
    if code:
        assert raised.value.code == code
    if status == 429:
        assert raised.value.retry_after_s


def test_describe_is_retried_while_the_captioner_loads_and_sends_the_request_id() -> None:
    seen: list[str] = []
    brief = {
        "description": "Warm lofi with mellow piano.",
        "source": "structured",
        "warnings": [],
        "model": "m",
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "attempts": 1},
        "timings": {"decode_s": 0, "generate_s": 0, "total_s": 0},
        "media": {"images": []},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["x-request-id"])
        if len(seen) == 1:
            return envelope(503, "model_loading", "1")
        return httpx.Response(200, json=brief)

    async def call() -> str:
        upstream = pool(answer)
        result = await CaptionerClient(upstream, retries=2, timeout_s=30).describe(
            {"prompt": "x"}, [], "rid"
        )
        await upstream.aclose()
        return result.description

    assert asyncio.run(call()) == "Warm lofi with mellow piano."
    assert seen == ["rid", "rid"]


def test_an_unreachable_upstream_is_503_and_compose_is_never_retried() -> None:
    calls: list[int] = []

    def refuse(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused")

    async def call() -> None:
        upstream = pool(refuse)
        await ComposerClient(upstream, 30).open_stream(A_REQUEST, None, "rid")

    with pytest.raises(ServiceUnavailable) as raised:
        asyncio.run(call())
    assert raised.value.code == "composer_unavailable" and calls == [1]


def test_a_busy_or_unreachable_replica_is_passed_over_for_another() -> None:
    calls: list[str] = []

    def busy(request: httpx.Request) -> httpx.Response:
        calls.append("busy")
        return envelope(503, "queue_full", "2")

    def down(request: httpx.Request) -> httpx.Response:
        calls.append("down")
        raise httpx.ConnectError("refused")

    def serves(request: httpx.Request) -> httpx.Response:
        calls.append("serves")
        return streamed([b"RIFF", b"data"])

    async def call() -> tuple[int, list[int]]:
        upstream = pool(busy, down, serves)
        upstream.replicas[2].outstanding = 10  # the busiest on paper: tried last
        response = await ComposerClient(upstream, 30).open_stream(
            ComposeFields(description="x"), None, "rid"
        )
        busy_now = [r.outstanding for r in upstream.replicas]
        async for _ in relay(response, 0.0, lambda: None):  # the stream ends: the replica is free
            pass
        healthy = [r.healthy for r in upstream.replicas]
        assert [r.outstanding for r in upstream.replicas] == [0, 0, 10]
        await upstream.aclose()
        return response.status_code, busy_now + [int(h) for h in healthy]

    status, state = asyncio.run(call())
    assert status == 200 and calls[-1] == "serves" and sorted(calls) == ["busy", "down", "serves"]
    assert state[:3] == [0, 0, 11]  # only the serving replica counts the open stream
    assert state[3:] == [1, 0, 1]  # the unreachable one is skipped until it checks healthy


def test_two_choices_spread_requests_by_what_is_outstanding() -> None:
    upstream = pool(*(lambda _: httpx.Response(200) for _ in range(3)))
    upstream.replicas[0].outstanding = 5  # a busy replica is chosen only against a busier one
    picks = [upstream.choose().url for _ in range(300)]
    assert picks.count("http://up0") == 0
    assert 100 < picks.count("http://up1") < 200
    upstream.replicas[1].healthy = False  # skipped while unhealthy
    assert {upstream.choose().url for _ in range(50)} == {"http://up2"}
    upstream.replicas[0].outstanding = 0
    assert {upstream.choose().url for _ in range(50)} == {"http://up0", "http://up2"}
    asyncio.run(upstream.aclose())


# -- the relay and capacity ----------------------------------------------------------------


def streamed(chunks: list[bytes], fail: bool = False) -> httpx.Response:
    class Body(httpx.AsyncByteStream):
        closed = False

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
            if fail:
                raise httpx.ReadError("the composer went away")

        async def aclose(self) -> None:
            Body.closed = True

    return httpx.Response(200, stream=Body())


def test_the_relay_passes_every_byte_and_always_closes_the_upstream() -> None:
    async def whole() -> tuple[bytes, bool, int]:
        response = streamed([b"RIFF", b"data", b"more"])
        cleaned: list[int] = []
        body = b"".join([c async for c in relay(response, 0.0, lambda: cleaned.append(1))])
        return body, response.is_closed, len(cleaned)

    assert asyncio.run(whole()) == (b"RIFFdatamore", True, 1)

    async def broken() -> bool:
        response = streamed([b"RIFF"], fail=True)
        with pytest.raises(httpx.ReadError):  # the client's response is cut short, not ended
            async for _ in relay(response, 0.0, lambda: None):
                pass
        return response.is_closed

    assert asyncio.run(broken())

    async def left() -> bool:
        response = streamed([b"a", b"b", b"c"])
        body = relay(response, 0.0, lambda: None)
        await body.__anext__()
        await body.aclose()  # the client went away after one piece
        return response.is_closed

    assert asyncio.run(left())


def test_capacity_refuses_past_its_limit_and_a_slot_is_released_once() -> None:
    capacity = Capacity(2, retry_after_s=3)
    first, second = capacity.take(), capacity.take()
    with pytest.raises(TooManyRequests) as full:
        capacity.take()
    assert full.value.retry_after_s == 3 and full.value.code == "at_capacity"
    first.release()
    first.release()  # every exit path may release: only the first counts
    third = capacity.take()
    with pytest.raises(TooManyRequests):
        capacity.take()
    second.release()
    third.release()
    assert metrics.IN_FLIGHT._value.get() == 0


def test_a_name_stands_for_every_address_it_resolves_to() -> None:
    def make(url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url)

    async def resolved() -> list[str]:
        upstream = ReplicaPool("composer", ["http://localhost:9"], make, resolve=True)
        await upstream.refresh()  # nothing listens on port 9: resolved, then found unhealthy
        urls = [r.url for r in upstream.replicas]
        assert upstream.readiness() is not None
        assert metrics.REPLICAS.labels("composer")._value.get() == 1
        assert metrics.REPLICAS_READY.labels("composer")._value.get() == 0
        await upstream.aclose()
        return urls

    assert asyncio.run(resolved()) == ["http://127.0.0.1:9"]
