"""One error envelope for every service: `{"error": {"code", "message", "request_id"}}`.

Code raises an `ApiError` subclass wherever it notices the problem; `install_error_handlers`
renders it once, together with FastAPI's validation errors and Starlette's HTTP errors, so that no
client ever sees a different shape or a stack trace.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from weavewave_common.request_id import current_request_id

logger = logging.getLogger(__name__)


class ErrorInfo(BaseModel):
    """What went wrong, for people and for programs."""

    code: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """The error envelope every WeaveWave service answers with."""

    error: ErrorInfo


class ApiError(Exception):
    """An error with an HTTP status, a stable machine-readable code and a message for people."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.retry_after_s = retry_after_s


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMedia(ApiError):
    status, code = 415, "unsupported_media"


class InvalidInput(ApiError):
    status, code = 422, "invalid_input"

    @classmethod
    def from_validation(cls, exc: ValidationError) -> InvalidInput:
        """A model's validation errors, worded as FastAPI's own are (`field: problem; …`)."""
        return cls(describe_validation(exc.errors()))


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


class BadGateway(ApiError):
    status, code = 502, "upstream_failed"


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"


class UpstreamTimeout(ApiError):
    status, code = 504, "upstream_timeout"


class InsufficientStorage(ApiError):
    """The disk is full: nothing the client did, and nothing to retry at once."""

    status, code = 507, "disk_full"


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""OSError numbers that mean the disk (or the quota on it) is full."""


def no_space(exc: OSError) -> bool:
    return exc.errno in NO_SPACE


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media",
    416: "range_not_satisfiable",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
    504: "upstream_timeout",
    507: "disk_full",
}

_DESCRIPTIONS = {
    400: "Malformed request (e.g. broken multipart body).",
    401: "No valid API key.",
    403: "The API key has been revoked.",
    413: "An upload or the request body is over its limit.",
    404: "No such resource (or it has expired).",
    408: "The upload stalled (no bytes for too long).",
    409: "The resource is not in a state that allows this (e.g. no audio yet).",
    415: "An upload's content is not a supported media type.",
    416: "The requested range is outside the file (`Content-Range` gives its size).",
    422: "A field is missing, out of range or inconsistent.",
    429: "Too many requests; retry after the `Retry-After` seconds.",
    500: "Unexpected server error.",
    502: "An upstream service failed on this request.",
    503: "The service is loading or saturated; retry after `Retry-After` seconds.",
    504: "An upstream service did not answer in time.",
    507: "The server's disk is full; retry later.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with the error envelope model."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(status, "Error.")}
        for status in statuses
    }


def error_json(
    status: int, code: str, message: str, *, retry_after_s: int | None = None
) -> JSONResponse:
    """Render the envelope with the current request id (and `Retry-After` when given)."""
    body = ErrorResponse(
        error=ErrorInfo(code=code, message=message, request_id=current_request_id())
    )
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def describe_validation(errors: Iterable[Any]) -> str:
    parts = []
    for err in errors:
        location = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{location}: {err.get('msg', 'invalid')}" if location else err.get("msg"))
    return "; ".join(parts) or "Invalid request."


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as the envelope: our own, validation errors, HTTP errors, and crashes."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        if exc.status >= 500:
            logger.warning("%s: %s", exc.code, exc.message)
        else:  # the client's: its code at info (never its message: it may quote the input)
            logger.info("%d %s", exc.status, exc.code, extra={"code": exc.code})
        return error_json(exc.status, exc.code, exc.message, retry_after_s=exc.retry_after_s)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        logger.info("422 invalid_input", extra={"code": "invalid_input"})
        return error_json(422, "invalid_input", describe_validation(exc.errors()))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        return error_json(exc.status_code, code, str(exc.detail))

    async def on_crash(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return error_json(500, "internal_error", "Unexpected server error; it has been logged.")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_crash)
