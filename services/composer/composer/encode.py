"""PCM chunks in, encoded bytes out, as they come: WAV, FLAC, MP3, Ogg Vorbis.

WAV gets a header with the exact data length up front (the duration is fixed before generation
starts), then raw 16-bit PCM. FLAC, MP3 and Ogg (Opus, 48 kHz: Opus has no 32 kHz mode) go
through FFmpeg (PyAV) into a non-seekable pipe, so the muxer writes a stream that needs no header
patching at the end, and whatever each chunk produced is sent at once.

Levels are set before encoding (`loudness.py`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
import numpy as np
import numpy.typing as npt

from weavewave_common.protocol import AudioFormat


class StreamEncoder(Protocol):
    sample_rate: int
    """Rate of the encoded stream, Hz (the model's, except where a codec needs its own)."""

    def encode(self, samples: npt.NDArray[np.float32]) -> bytes:
        """Encode float samples [C, N] in [-1, 1]; return the bytes ready to send."""

    def close(self) -> bytes:
        """Flush the encoder; return the last bytes."""


def _pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    interleaved = np.clip(samples.T, -1.0, 1.0)
    return (interleaved * 32767.0).round().astype("<i2").tobytes()


class WavEncoder:
    """RIFF/WAVE, 16-bit PCM, with the data length known in advance."""

    def __init__(self, sample_rate: int, channels: int, total_frames: int) -> None:
        data_bytes = total_frames * channels * 2
        fmt = struct.pack(
            "<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16
        )
        riff = struct.pack("<I", 36 + data_bytes)
        self._header = (
            b"RIFF" + riff + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", data_bytes)
        )
        self._remaining = total_frames
        self._channels = channels
        self.sample_rate = sample_rate

    def encode(self, samples: npt.NDArray[np.float32]) -> bytes:
        samples = samples[:, : self._remaining]
        self._remaining -= samples.shape[1]
        header, self._header = self._header, b""
        return header + _pcm16(samples)

    def close(self) -> bytes:
        """Pad with silence if the stream delivered fewer frames than announced."""
        header, self._header = self._header, b""
        padding, self._remaining = b"\x00\x00" * self._remaining * self._channels, 0
        return header + padding


class _Pipe:
    """Write-only and non-seekable, so FFmpeg writes a stream that needs no header patching."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        self._pending.extend(data)
        return len(data)

    def take(self) -> bytes:
        data, self._pending = bytes(self._pending), bytearray()
        return data


@dataclass(frozen=True)
class _Codec:
    codec: str
    muxer: str
    rate: int | None = None
    """Output rate when the codec needs its own (Opus: 48 kHz); None keeps the model's."""
    options: dict[str, str] = field(default_factory=dict)


CODECS = {
    AudioFormat.FLAC: _Codec("flac", "flac"),
    AudioFormat.MP3: _Codec("libmp3lame", "mp3"),
    # Short Ogg pages, flushed at once: each chunk's audio leaves as soon as it is encoded.
    AudioFormat.OGG: _Codec(
        "libopus", "ogg", 48000, {"page_duration": "100000", "flush_packets": "1"}
    ),
}


class FfmpegEncoder:
    """FLAC, MP3 or Ogg Opus through PyAV's FFmpeg into a pipe. FLAC's length is left unknown
    (valid FLAC); MP3 has no gapless header, so decoders keep the encoder's priming and padding
    (under 80 ms)."""

    def __init__(self, fmt: AudioFormat, sample_rate: int, channels: int) -> None:
        spec = CODECS[fmt]
        self.sample_rate = spec.rate or sample_rate
        self._layout = "mono" if channels == 1 else "stereo"
        self._pipe = _Pipe()
        self._container = av.open(self._pipe, mode="w", format=spec.muxer, options=spec.options)
        stream: Any = self._container.add_stream(spec.codec, rate=self.sample_rate)
        stream.layout = self._layout
        if fmt is AudioFormat.MP3:
            stream.bit_rate = 192_000
        self._stream = stream
        self._resampler = av.AudioResampler(
            format="fltp", layout=self._layout, rate=self.sample_rate
        )
        self._input_rate = sample_rate
        self._pts = 0

    def _mux(self, frames: list[av.AudioFrame] | None) -> bytes:
        for frame in frames if frames is not None else [None]:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._pipe.take()

    def encode(self, samples: npt.NDArray[np.float32]) -> bytes:
        if samples.shape[1] == 0:
            return self._pipe.take()
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=self._layout
        )
        frame.sample_rate = self._input_rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        return self._mux(self._resampler.resample(frame))

    def close(self) -> bytes:
        data = self._mux(self._resampler.resample(None))
        data += self._mux(None)
        self._container.close()
        return data + self._pipe.take()


def open_encoder(
    fmt: AudioFormat, sample_rate: int, channels: int, total_frames: int
) -> StreamEncoder:
    """The encoder for `fmt`; `total_frames` (samples per channel) sizes the WAV header."""
    if fmt is AudioFormat.WAV:
        return WavEncoder(sample_rate, channels, total_frames)
    return FfmpegEncoder(fmt, sample_rate, channels)
