"""Clients for the captioner and the composer (one pooled httpx client each).

Transport failures become the design's errors: an upstream that cannot be reached is 503 with
`Retry-After`; one that does not answer in time is 504; an upstream's own error envelope (a
4xx for the user's input, a 503 while loading) is passed on with its status and code. Only
`describe` is retried, with backoff: it is idempotent, and composing twice would waste a GPU.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.uploads import Upload
from weavewave_common.deadline import TIMEOUT_HEADER
from weavewave_common.errors import (
    ApiError,
    BadGateway,
    ServiceUnavailable,
    TooManyRequests,
    UpstreamTimeout,
)
from weavewave_common.protocol import MusicBrief
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
    uploads: list[Upload], as_field: str | None = None
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


class CaptionerClient:
    def __init__(self, client: httpx.AsyncClient, retries: int, timeout_s: float) -> None:
        self._client = client
        self._retries = retries
        self._headers = {TIMEOUT_HEADER: f"{timeout_s:g}"}  # the brief is not wanted later

    async def describe(
        self, prompt: str | None, uploads: list[Upload], request_id: str
    ) -> MusicBrief:
        """The brief for these inputs; retried with backoff when the captioner is unreachable."""
        data = {"prompt": prompt} if prompt is not None else {}
        for attempt in range(self._retries + 1):
            try:
                response = await self._client.post(
                    "/v1/describe",
                    data=data,
                    files=_files(uploads) or None,
                    headers={**self._headers, REQUEST_ID_HEADER: request_id},
                )
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout("The captioner did not answer in time.") from exc
            except httpx.TransportError as exc:
                if attempt < self._retries:
                    logger.warning("captioner unreachable (%s); retrying", exc)
                    await asyncio.sleep(0.5 * 2**attempt)
                    continue
                raise _unreachable("captioner") from exc
            if response.status_code == 503 and attempt < self._retries:
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if response.status_code != 200:
                raise _error_from(response, "captioner")
            return MusicBrief.model_validate(response.json())
        raise _unreachable("captioner")


class ComposerClient:
    def __init__(self, client: httpx.AsyncClient, timeout_s: float) -> None:
        self._client = client
        self._headers = {TIMEOUT_HEADER: f"{timeout_s:g}"}  # nor audio that stalls longer
        self._melody: bool | None = None

    async def supports_melody(self) -> bool:
        """Whether the composer's model takes a melody (asked once, then remembered)."""
        if self._melody is None:
            try:
                models = (await self._client.get("/v1/models")).json()["models"]
                self._melody = any(m.get("supports_melody") for m in models)
            except (httpx.HTTPError, ValueError, KeyError):
                return False
        return self._melody

    async def open_stream(
        self, fields: dict[str, str], melody: Upload | None, request_id: str
    ) -> httpx.Response:
        """Start composing; returns the streaming response (200) for the caller to relay."""
        request = self._client.build_request(
            "POST",
            "/v1/compose",
            data=fields,
            files=_files([melody], as_field="melody") if melody else None,
            headers={**self._headers, REQUEST_ID_HEADER: request_id},
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("The composer did not answer in time.") from exc
        except httpx.TransportError as exc:
            raise _unreachable("composer") from exc
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            raise _error_from(response, "composer")
        return response


async def is_ready(client: httpx.AsyncClient) -> str | None:
    """None when the upstream's /readyz says ready, else why not."""
    try:
        response = await client.get("/readyz", timeout=2.0)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    if response.status_code == 200:
        return None
    try:
        return str(response.json().get("detail") or "not ready")
    except ValueError:
        return f"not ready ({response.status_code})"
