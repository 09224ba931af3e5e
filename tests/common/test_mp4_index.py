"""An MP4's sample index is checked against the file before FFmpeg reads it
(`weavewave_common/mp4_index.py`): a tiny file may not claim millions of samples."""

from __future__ import annotations

import io
import struct

import pytest

from tests.media_factory import video_bytes, wav_bytes
from weavewave_common.audio import decode_audio
from weavewave_common.errors import UnsupportedMedia
from weavewave_common.mp4_index import check_mp4_index


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_claiming(samples: int, fixed_size: int = 0, time_samples: int | None = None) -> bytes:
    """A 1 KB-class MP4 whose one track's tables claim `samples` samples."""
    stts = box(b"stts", struct.pack(">IIII", 0, 1, time_samples or samples, 1000))
    stsz = box(b"stsz", struct.pack(">III", 0, fixed_size, samples))
    stbl = box(b"stbl", stts + stsz)
    trak = box(b"trak", box(b"mdia", box(b"minf", stbl)))
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    return ftyp + box(b"moov", trak) + box(b"mdat", bytes(256))


@pytest.mark.parametrize(
    ("samples", "fixed", "times"),
    [(80_000_000, 0, None), (80_000_000, 1, None), (10, 1, 80_000_000)],
)
def test_a_tiny_file_claiming_millions_of_samples_is_refused(
    samples: int, fixed: int, times: int | None
) -> None:
    """Before: a 1.4 KB MP4 whose table claimed 80 million samples cost 4.7 GB and a decode
    thread at 100 % for 15 minutes, in the captioner and in the gateway reading its length."""
    data = mp4_claiming(samples, fixed, times)
    assert len(data) < 2048
    with pytest.raises(UnsupportedMedia) as refused:
        check_mp4_index(io.BytesIO(data), "bomb.mp4")
    assert refused.value.code == "media_index_invalid"
    with pytest.raises(UnsupportedMedia) as decoding:
        decode_audio(io.BytesIO(data), "bomb.m4a", 16000, 60.0)  # every opener checks first
    assert decoding.value.code == "media_index_invalid"


def test_real_files_pass_and_are_left_at_their_start() -> None:
    for data in (video_bytes(seconds=2, with_audio=True), video_bytes(seconds=1), wav_bytes()):
        file = io.BytesIO(data)
        file.seek(5)
        check_mp4_index(file, "real")
        assert file.tell() == 0
