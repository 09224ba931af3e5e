"""The stream encoders (`composer/encode.py`): every format decodes to the full length."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from composer.encode import open_encoder
from weavewave_common.protocol import AudioFormat


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_encoders_stream_bytes_that_decode_to_the_full_length(fmt: AudioFormat) -> None:
    rate, total = 32000, 3 * 32000
    encoder = open_encoder(fmt, rate, 1, total)
    tone = (0.3 * np.sin(np.arange(total) * 2 * np.pi * 440 / rate)).astype(np.float32)[None]
    parts = [encoder.encode(tone[:, i : i + 16000]) for i in range(0, total, 16000)]
    parts.append(encoder.close())
    assert sum(1 for p in parts[:-1] if p) >= 3  # bytes flow while audio is still coming
    with av.open(io.BytesIO(b"".join(parts)), mode="r") as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
        assert container.streams.audio[0].rate == encoder.sample_rate
    seconds = decoded / encoder.sample_rate
    slack = 0.08 if fmt is AudioFormat.MP3 else 0.02  # MP3: the encoder's priming and padding
    assert abs(seconds - 3.0) <= slack


def test_wav_header_announces_the_exact_length() -> None:
    encoder = open_encoder(AudioFormat.WAV, 32000, 1, 32000)
    data = encoder.encode(np.zeros((1, 32000), np.float32)) + encoder.close()
    assert len(data) == 44 + 64000
    assert int.from_bytes(data[40:44], "little") == 64000
