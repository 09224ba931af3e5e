"""Read a multipart body as it streams in: every part under its cap, files spooled, types sniffed.

Nothing is held whole in memory: file parts go to `SpooledTemporaryFile`s (memory up to a
threshold, then disk), and a part is refused (413) the moment it passes its kind's limit, not
after it has been read. A file's type is decided by its first bytes (magic numbers), never by
the client's name or Content-Type. Every temporary file is closed by `ParsedForm.close()`,
which the caller runs on every path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import BinaryIO, cast
from urllib.parse import parse_qsl

import filetype
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from weavewave_common.errors import (
    BadRequest,
    InvalidInput,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMedia,
)
from weavewave_common.threads import run_to_the_end
from weavewave_common.uploads import Upload

logger = logging.getLogger(__name__)

FILE_FIELDS = {"images": "image", "video": "video", "audio": "audio"}
# A video container can carry the audio clip too (an .m4a is an MP4), so audio accepts both.
ACCEPTED = {"image": ("image/",), "video": ("video/",), "audio": ("audio/", "video/")}


@dataclass(frozen=True)
class UploadLimits:
    max_images: int = 8
    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 500 * 1024 * 1024
    max_audio_bytes: int = 50 * 1024 * 1024
    max_field_chars: int = 2000
    spool_memory_bytes: int = 1024 * 1024
    idle_timeout_s: float = 30.0
    """Longest wait for the next bytes of a body (a stalled upload holds a slot and a file)."""
    min_bytes_per_s: float = 8192.0
    """After `rate_grace_s`, a body must have come at least this fast on average: one that
    drips (a byte every few seconds, never idle long enough to stall) holds a slot for
    nothing and, many at once, locks every other client out."""
    rate_grace_s: float = 10.0
    text_fields: frozenset[str] = frozenset()
    field_chars: tuple[tuple[str, int], ...] = ()
    """Text fields with a cap of their own (lyrics run longer than a prompt)."""

    def chars(self, name: str) -> int:
        """The longest text field `name` may be, in characters."""
        return dict(self.field_chars).get(name, self.max_field_chars)

    def cap(self, kind: str) -> int:
        return {
            "image": self.max_image_bytes,
            "video": self.max_video_bytes,
            "audio": self.max_audio_bytes,
        }[kind]


@dataclass
class FormFile(Upload):
    """One spooled file part of a form: an `Upload` with its form field and the media type
    sniffed from its first bytes."""

    size: int = 0
    field: str = ""
    media_type: str = "application/octet-stream"


@dataclass
class ParsedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[FormFile] = field(default_factory=list)

    def by_field(self, name: str) -> list[FormFile]:
        return [f for f in self.files if f.field == name]

    def close(self) -> None:
        """Remove every temporary file (safe to call more than once)."""
        for upload in self.files:
            upload.file.close()


class _FormBuilder:
    """python-multipart callbacks that build a `ParsedForm` under `UploadLimits`."""

    def __init__(self, limits: UploadLimits, form: ParsedForm) -> None:
        self.limits = limits
        self.form = form
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._text = bytearray()
        self._upload: FormFile | None = None

    def on_part_begin(self) -> None:
        self._headers, self._text, self._upload = {}, bytearray(), None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        kind = FILE_FIELDS.get(self._name)
        if kind is None:
            if self._name not in self.limits.text_fields:
                raise InvalidInput(f"Unknown field {self._name!r}.", code="unknown_field")
            return
        if filename is None and kind:
            raise InvalidInput(f"{self._name}: must be a file upload.", code="not_a_file")
        if kind == "image" and len(self.form.by_field("images")) >= self.limits.max_images:
            raise InvalidInput(
                f"images: at most {self.limits.max_images} per request.", code="too_many_images"
            )
        if kind != "image" and self.form.by_field(self._name):
            raise InvalidInput(f"{self._name}: one file at most.", code="too_many_files")
        spool = SpooledTemporaryFile(max_size=self.limits.spool_memory_bytes)  # noqa: SIM115
        name = filename.decode("utf-8", "replace")[-255:] if filename else None
        self._upload = FormFile(file=cast(BinaryIO, spool), filename=name, field=self._name)
        self.form.files.append(self._upload)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._upload is None:
            self._text += data[start:end]
            if len(self._text) > 4 * self.limits.chars(self._name):
                raise InvalidInput(
                    f"{self._name}: over {self.limits.chars(self._name)} characters.",
                    code="field_too_long",
                )
            return
        self._upload.size += end - start
        kind = FILE_FIELDS[self._upload.field]
        if self._upload.size > self.limits.cap(kind):
            raise PayloadTooLarge(f"{self._upload.field}: over {self.limits.cap(kind)} bytes.")
        self._upload.file.write(data[start:end])

    def on_part_end(self) -> None:
        if self._upload is None:
            text = self._text.decode("utf-8", "replace")
            if len(text) > self.limits.chars(self._name):
                raise InvalidInput(
                    f"{self._name}: over {self.limits.chars(self._name)} characters.",
                    code="field_too_long",
                )
            self.form.fields[self._name] = text
            return
        self._upload.media_type = sniff(self._upload)


def sniff(upload: FormFile) -> str:
    """The upload's media type from its first bytes; 415 when it is not the kind its field wants."""
    kind = FILE_FIELDS[upload.field]
    upload.file.seek(0)
    guess = filetype.guess(upload.file.read(8192))
    upload.file.seek(0)
    name = upload.filename or upload.field
    if upload.size == 0:
        raise InvalidInput(f"{name}: the file is empty.", code="empty_file")
    if guess is None or not guess.mime.startswith(ACCEPTED[kind]):
        found = guess.mime if guess else "unrecognised content"
        raise UnsupportedMedia(f"{name}: expected {kind}, found {found}.")
    return str(guess.mime)


URLENCODED = b"application/x-www-form-urlencoded"
PARSE_BATCH_BYTES = 256 * 1024
"""Body bytes gathered before one hand-off to the parsing thread (spool writes hit the disk:
they must not run on the event loop; one hop per batch keeps the hand-offs cheap)."""


MAX_BOUNDARY = 70
"""RFC 2046's longest multipart boundary."""


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("Send multipart/form-data with a boundary.", code="not_multipart")
    if len(boundary) > MAX_BOUNDARY:
        raise BadRequest(
            f"Malformed multipart body: a boundary is at most {MAX_BOUNDARY} characters "
            "(RFC 2046).",
            code="malformed_multipart",
        )
    return boundary


async def _parse_urlencoded(body: AsyncIterator[bytes], limits: UploadLimits) -> ParsedForm:
    """Text fields only (what `curl -d` sends); bounded like the multipart text fields."""
    cap = 4 * sum(limits.chars(name) for name in limits.text_fields) or 4 * limits.max_field_chars
    raw = bytearray()
    async for chunk in body:
        raw += chunk
        if len(raw) > cap:
            raise PayloadTooLarge(f"Form fields over {cap} bytes.")
    form = ParsedForm()
    for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        if name not in limits.text_fields:
            raise InvalidInput(f"Unknown field {name!r}.", code="unknown_field")
        if len(value) > limits.chars(name):
            raise InvalidInput(
                f"{name}: over {limits.chars(name)} characters.", code="field_too_long"
            )
        form.fields[name] = value
    return form


def _stalled(idle_s: float) -> RequestTimeout:
    return RequestTimeout(
        f"The upload stalled: nothing arrived for {idle_s:g} s.", code="upload_stalled"
    )


def _too_slow(rate: float) -> RequestTimeout:
    return RequestTimeout(
        f"The upload is too slow: under {rate:g} bytes a second.", code="upload_too_slow"
    )


async def rate_bounded(body: AsyncIterator[bytes], limits: UploadLimits) -> AsyncIterator[bytes]:
    """`body`, refused (408) once nothing has come for `idle_timeout_s` (`upload_stalled`), or
    once, past `rate_grace_s`, fewer bytes have come than `min_bytes_per_s` for the time taken
    (`upload_too_slow`): each wait for the next chunk ends when the rate would fall short."""
    source = aiter(body)
    started, received = time.monotonic(), 0
    while True:
        elapsed = time.monotonic() - started
        rate_deadline = limits.rate_grace_s + received / limits.min_bytes_per_s - elapsed
        wait = min(limits.idle_timeout_s, max(rate_deadline, 0.0))
        try:
            async with asyncio.timeout(wait):
                chunk = await anext(source)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if wait < limits.idle_timeout_s:
                raise _too_slow(limits.min_bytes_per_s) from None
            raise _stalled(limits.idle_timeout_s) from None
        received += len(chunk)
        yield chunk


async def parse_multipart(
    content_type: str, body: AsyncIterator[bytes], limits: UploadLimits
) -> ParsedForm:
    """Parse the streamed body; on any error the temporary files are removed before raising."""
    body = rate_bounded(body, limits)
    if parse_options_header(content_type)[0] == URLENCODED:
        return await _parse_urlencoded(body, limits)
    if not content_type:  # no body at all: an empty form (the caller says what is missing)
        async for chunk in body:
            if chunk:
                raise BadRequest("A body without a Content-Type.", code="not_multipart")
        return ParsedForm()
    form = ParsedForm()
    builder = _FormBuilder(limits, form)
    callbacks = {
        name: getattr(builder, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
    try:
        parser = MultipartParser(boundary_of(content_type), callbacks)  # type: ignore[arg-type]
        pending = bytearray()
        async for chunk in body:  # parsed (and spooled to disk) off the event loop, in batches
            pending += chunk
            if len(pending) >= PARSE_BATCH_BYTES:
                await run_to_the_end(parser.write, bytes(pending))
                pending.clear()
        if pending:
            await run_to_the_end(parser.write, bytes(pending))
        parser.finalize()
        if parser.state != MultipartState.END:
            raise MultipartParseError("the body ended before its closing boundary")
    except MultipartParseError as exc:
        form.close()
        raise BadRequest(f"Malformed multipart body: {exc}", code="malformed_multipart") from exc
    except BaseException:
        form.close()
        raise
    return form
