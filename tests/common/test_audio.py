"""Opening and decoding uploaded audio (`weavewave_common/audio.py`) under caps that bound
memory, not only length."""

from __future__ import annotations

import io
import struct

import pytest

from tests.media_factory import wav_bytes
from weavewave_common.audio import decode_audio
from weavewave_common.errors import UnsupportedMedia


def wav_declaring(rate: int, samples: int = 2000) -> bytes:
    """A 16-bit mono PCM WAV of silence whose header says `rate` Hz."""
    data = b"\x00" * (2 * samples)
    header = struct.pack("<4sI4s", b"RIFF", 36 + len(data), b"WAVE")
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, rate, 2 * rate, 2, 16)
    return header + fmt + struct.pack("<4sI", b"data", len(data)) + data


def test_an_absurd_declared_sample_rate_is_refused_before_decoding() -> None:
    """Before: a 4 KB WAV declaring ~142 MHz made the resampler allocate over a gigabyte."""
    with pytest.raises(UnsupportedMedia) as refused:
        decode_audio(io.BytesIO(wav_declaring(142_000_000)), "bomb.wav", 16000, 60.0)
    assert refused.value.code == "sample_rate_unsupported"


def test_real_rates_still_decode() -> None:
    for rate in (8000, 44100, 192_000):
        clip = decode_audio(io.BytesIO(wav_declaring(rate)), "ok.wav", 16000, 60.0)
        assert clip.sample_rate == 16000 and clip.samples.size > 0
    clip = decode_audio(io.BytesIO(wav_bytes(seconds=1.0)), "tone.wav", 16000, 60.0)
    assert abs(clip.duration_s - 1.0) < 0.01
