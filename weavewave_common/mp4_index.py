"""An MP4/QuickTime file's sample index checked against the file itself, before FFmpeg reads it.

FFmpeg builds an in-memory entry for every sample a track's tables claim (`stts` run lengths,
`stsz`), before a single frame is decoded: a 1.4 KB file whose table says 80 million samples
costs gigabytes and minutes in whichever process opens it. A real index cannot claim more than
the file holds, so each track is checked with no limit of its own: a fixed sample size times
the count must fit in the file, a per-sample size table must be really there, and the time
table may not count more samples than the size table. Only box headers and these tables' first
words are read; the walk itself is bounded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

from weavewave_common.errors import UnsupportedMedia

CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})
"""Boxes whose children lead to the sample tables."""
TOP_LEVEL = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"})
"""Box types one of which starts an ISO-BMFF/QuickTime file."""
MAX_BOXES = 10_000


class IndexTooLarge(UnsupportedMedia):
    """The file's index claims more samples than the file can hold."""

    code = "media_index_invalid"


def _boxes(
    file: IO[bytes], start: int, end: int, budget: list[int]
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box between `start` and `end`."""
    at = start
    while at + 8 <= end:
        budget[0] -= 1
        if budget[0] < 0:
            return
        file.seek(at)
        header = file.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        payload = at + 8
        if size == 1:
            large = file.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            payload = at + 16
        elif size == 0:
            size = end - at
        if size < payload - at:
            return  # malformed: FFmpeg will say so itself
        box_end = min(at + size, end)
        yield kind, payload, box_end
        at = at + size


def _words(file: IO[bytes], at: int, count: int) -> tuple[int, ...]:
    file.seek(at)
    data = file.read(4 * count)
    if len(data) < 4 * count:
        return ()
    return struct.unpack(f">{count}I", data)


def _stts_samples(file: IO[bytes], payload: int, end: int) -> int:
    """The samples an `stts` (time-to-sample) table counts, every entry read."""
    words = _words(file, payload, 2)  # version/flags, entry count
    if not words:
        return 0
    entries = words[1]
    if 8 + 8 * entries > end - payload:
        return 1 << 62  # more entries than the box holds
    file.seek(payload + 8)
    table = file.read(8 * entries)
    return sum(struct.unpack(f">{2 * entries}I", table)[0::2])


def _check_sizes(file: IO[bytes], kind: bytes, payload: int, end: int, file_size: int) -> int:
    """The samples a size table (`stsz`, `stz2`) says, refused when it cannot be true."""
    words = _words(file, payload, 3)
    if not words:
        return 0
    if kind == b"stsz":
        _, sample_size, count = words
        if sample_size and sample_size * count > file_size:
            raise IndexTooLarge(f"{count} samples of {sample_size} bytes in {file_size} bytes")
        if not sample_size and 12 + 4 * count > end - payload:
            raise IndexTooLarge(f"a size table of {count} entries in {end - payload} bytes")
        return int(count)
    field_bits = words[1] & 0xFF  # stz2: reserved(24) field_size(8), sample_count
    count = words[2]
    if 12 + (count * max(field_bits, 4) + 7) // 8 > end - payload:
        raise IndexTooLarge(f"a compact size table of {count} entries in {end - payload} bytes")
    return int(count)


def _check_table(
    file: IO[bytes], payload: int, end: int, file_size: int, budget: list[int]
) -> None:
    sizes = times = 0
    for kind, start, stop in _boxes(file, payload, end, budget):
        if kind in (b"stsz", b"stz2"):
            sizes = _check_sizes(file, kind, start, stop, file_size)
        elif kind == b"stts":
            times = _stts_samples(file, start, stop)
    if times > max(sizes, 0) and times > file_size:
        raise IndexTooLarge(f"a time table of {times} samples in {file_size} bytes")


def _walk(file: IO[bytes], start: int, end: int, file_size: int, budget: list[int]) -> None:
    for kind, payload, box_end in list(_boxes(file, start, end, budget)):
        if kind == b"stbl":
            _check_table(file, payload, box_end, file_size, budget)
        elif kind in CONTAINERS:
            _walk(file, payload, box_end, file_size, budget)


def check_mp4_index(file: IO[bytes], name: str) -> None:
    """Refuse (415 `media_index_invalid`) an MP4/QuickTime file whose sample tables claim more
    than it holds; any other file passes untouched. Leaves the file at its start."""
    try:
        file.seek(0, 2)
        file_size = file.tell()
        file.seek(0)
        head = file.read(8)
        if len(head) < 8 or head[4:8] not in TOP_LEVEL:
            return
        try:
            _walk(file, 0, file_size, file_size, [MAX_BOXES])
        except IndexTooLarge as exc:
            raise IndexTooLarge(
                f"{name}: its index cannot be true ({exc.message}).", code=exc.code
            ) from None
    finally:
        file.seek(0)
