"""Clients for the captioner and the composer, over each tier's replicas (`replicas.py`).

Transport failures become the design's errors: an upstream that cannot be reached is 503 with
`Retry-After`; one that does not answer in time is 504; an upstream's own error envelope (a
4xx for the user's input, a 503 while loading) is passed on with its status and code. Every
call goes to a replica chosen for it; a replica that cannot be reached, or answers 503/429
before any audio (busy, loading, shutting down), is passed over for another. `describe` is
also retried with backoff (it is idempotent); a stream already under way is never retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import ValidationError

from gateway.replicas import NoReplica, Replica, ReplicaPool
from gateway.uploads import FormFile
from weavewave_common.deadline import TIMEOUT_HEADER
from weavewave_common.errors import (
    ApiError,
    BadGateway,
    ServiceUnavailable,
    TooManyRequests,
    UpstreamTimeout,
)
from weavewave_common.protocol import (
    CaptionerCard,
    CaptionerCards,
    ComposeFields,
    ComposerCard,
    ComposerCards,
    MusicBrief,
)
from weavewave_common.request_id import REQUEST_ID_HEADER

logger = logging.getLogger(__name__)


class UpstreamError(ApiError):
    """An upstream's error, relayed with its own status and code."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None) -> None:
        super().__init__(message, code=code, retry_after_s=retry_after_s)
        self.status = status


UPSTREAM_FULL = frozenset({"busy", "queue_full"})
"""Upstream 503 codes that mean "too much work right now": the client hears 429 (back off)."""


def _error_from(response: httpx.Response, upstream: str) -> ApiError:
    """The client's error for an upstream's error response (its envelope passed on)."""
    retry_after = response.headers.get("retry-after")
    retry = int(retry_after) if retry_after and retry_after.isdigit() else None
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = None
    if isinstance(error, dict) and {"code", "message"} <= error.keys():
        if response.status_code == 503 and error["code"] in UPSTREAM_FULL:
            return TooManyRequests(
                f"WeaveWave is busy ({upstream}); retry shortly.",
                code="busy",
                retry_after_s=retry or 2,
            )
        if response.status_code in (500, 502):  # its bug, not the client's: no internals
            return BadGateway(f"The {upstream} failed on this request.")
        return UpstreamError(response.status_code, error["code"], error["message"], retry)
    if response.status_code >= 500:
        return ServiceUnavailable(f"The {upstream} failed; retry shortly.", retry_after_s=5)
    return UpstreamError(
        response.status_code, "upstream_error", f"The {upstream} refused the request.", retry
    )


def _unreachable(upstream: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The {upstream} is unavailable; retry shortly.",
        code=f"{upstream}_unavailable",
        retry_after_s=5,
    )


def _files(
    uploads: list[FormFile], as_field: str | None = None
) -> list[tuple[str, tuple[str, Any, str]]]:
    """Multipart file parts for httpx, under their own field names or `as_field`."""
    out = []
    for upload in uploads:
        upload.file.seek(0)
        field = as_field or upload.field
        out.append((field, (upload.filename or upload.field, upload.file, upload.media_type)))
    return out


@dataclass(frozen=True)
class Timeouts:
    connect_s: float
    read_s: float


RETRY_ELSEWHERE = frozenset({429, 503})
"""Statuses that say "not now, not here" before any work: another replica may take it."""


async def _send_to_replicas(
    pool: ReplicaPool,
    upstream: str,
    send: Callable[[Replica], Awaitable[httpx.Response]],
    retries: int = 0,
) -> tuple[Replica, httpx.Response]:
    """`send` to one replica after another until one answers other than 429/503; after every
    replica was tried, start over after a backoff, `retries` times. The replica comes back
    still counted as outstanding: the caller says `done()` when the response is."""
    tried: set[str] = set()
    rounds = 0
    last: ApiError = _unreachable(upstream)
    while True:
        try:
            replica = pool.choose(tried)
        except NoReplica:
            if rounds >= retries:
                raise last from None
            await asyncio.sleep(0.5 * 2**rounds)
            rounds, tried = rounds + 1, set()
            continue
        tried.add(replica.url)
        replica.outstanding += 1
        try:
            response = await send(replica)
        except httpx.TimeoutException as exc:
            replica.done()
            raise UpstreamTimeout(f"The {upstream} did not answer in time.") from exc
        except httpx.TransportError as exc:
            replica.done()
            pool.mark_down(replica, type(exc).__name__)
            logger.warning("%s %s unreachable (%s); trying another", upstream, replica.url, exc)
            last = _unreachable(upstream)
            continue
        except BaseException:
            replica.done()
            raise
        if response.status_code not in RETRY_ELSEWHERE:
            return replica, response
        await response.aread()
        await response.aclose()
        replica.done()
        last = _error_from(response, upstream)


Card = TypeVar("Card", CaptionerCard, ComposerCard)


class ModelCard(Generic[Card]):
    """The model a tier serves, as its `/v1/models` tells (every replica serves the same):
    asked until a replica answers, then remembered. `parse` reads the served card from the
    answer's body (a card that does not parse counts as no answer)."""

    def __init__(self, pool: ReplicaPool, parse: Callable[[bytes], Card]) -> None:
        self._pool = pool
        self._parse: Callable[[bytes], Card] = parse
        self._card: Card | None = None

    async def get(self) -> Card | None:
        """The card, or None when no replica answers now."""
        if self._card is None:
            self._card = await self._ask()
        return self._card

    async def _ask(self) -> Card | None:
        try:
            replica = self._pool.choose()
            response = await replica.client.get("/v1/models")
            if response.status_code != 200:
                return None
            return self._parse(response.content)
        except (httpx.HTTPError, ValidationError, IndexError, NoReplica):
            return None


def _captioner_card(body: bytes) -> CaptionerCard:
    return CaptionerCards.model_validate_json(body).models[0]


def _composer_card(body: bytes) -> ComposerCard:
    return ComposerCards.model_validate_json(body).models[0]


class CaptionerClient:
    def __init__(self, pool: ReplicaPool, retries: int, timeout_s: float) -> None:
        self._pool = pool
        self._retries = retries
        self._headers = {TIMEOUT_HEADER: f"{timeout_s:g}"}  # the brief is not wanted later
        self.model: ModelCard[CaptionerCard] = ModelCard(pool, _captioner_card)

    async def hears_audio(self) -> bool:
        card = await self.model.get()
        return card is not None and card.hears_audio

    async def describe(
        self, fields: dict[str, str], uploads: list[FormFile], request_id: str
    ) -> MusicBrief:
        """The brief for these text fields and uploads: from another replica when one cannot
        be reached or is busy, and after a backoff (`retries` times) when every replica was
        tried."""

        async def send(replica: Replica) -> httpx.Response:
            return await replica.client.post(
                "/v1/describe",
                data=fields,
                files=_files(uploads) or None,
                headers={**self._headers, REQUEST_ID_HEADER: request_id},
            )

        replica, response = await _send_to_replicas(self._pool, "captioner", send, self._retries)
        replica.done()
        if response.status_code != 200:
            raise _error_from(response, "captioner")
        return MusicBrief.model_validate(response.json())


class _Counted(httpx.AsyncByteStream):
    """A response body that tells its replica when it is closed (the request is done)."""

    def __init__(self, inner: httpx.AsyncByteStream, replica: Replica) -> None:
        self._inner = inner
        self._replica: Replica | None = replica

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._replica is not None:
                self._replica.done()
                self._replica = None


class ComposerClient:
    def __init__(self, pool: ReplicaPool, timeout_s: float) -> None:
        self._pool = pool
        self._headers = {TIMEOUT_HEADER: f"{timeout_s:g}"}  # nor audio that stalls longer
        self.model: ModelCard[ComposerCard] = ModelCard(pool, _composer_card)

    async def open_stream(
        self, request: ComposeFields, clip: FormFile | None, request_id: str
    ) -> httpx.Response:
        """Start composing on a replica that takes it; returns the streaming response (200)
        for the caller to relay (closing it frees the replica). The clip goes as `audio` when
        the request says what it is for (`audio_use`), else as a `melody`."""
        fields = request.form_fields()
        as_field = "melody" if request.audio_use is None else "audio"

        async def send(replica: Replica) -> httpx.Response:
            request = replica.client.build_request(
                "POST",
                "/v1/compose",
                data=fields,
                files=_files([clip], as_field=as_field) if clip else None,
                headers={**self._headers, REQUEST_ID_HEADER: request_id},
            )
            return await replica.client.send(request, stream=True)

        replica, response = await _send_to_replicas(self._pool, "composer", send)
        if response.status_code == 200:
            response.stream = _Counted(response.stream, replica)  # type: ignore[arg-type]
            return response
        try:
            await response.aread()
            await response.aclose()
        finally:
            replica.done()
        raise _error_from(response, "composer")
