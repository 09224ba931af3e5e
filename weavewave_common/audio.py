"""Open media containers safely and decode audio to mono float32 (PyAV), under a length cap.

Shared by the captioner (audio uploads, video soundtracks) and the composer (melody clips).
FFmpeg probes the content itself, so the client's file name and Content-Type play no part; only
the demuxers a caller allows are accepted (FFmpeg would otherwise happily open a PNG as video).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Literal, overload

import av
import av.error
import numpy as np
import numpy.typing as npt

from weavewave_common.errors import InvalidInput, UnsupportedMedia
from weavewave_common.mp4_index import check_mp4_index

AUDIO_DEMUXERS = frozenset(
    {"wav", "mp3", "flac", "ogg", "mov", "mp4", "m4a", "matroska", "webm", "aac", "aiff", "w64"}
)


@dataclass(frozen=True)
class DecodedAudio:
    samples: npt.NDArray[np.float32]
    """Samples in [-1, 1]: shape [N] mono, [2, N] stereo."""
    sample_rate: int
    codec: str
    truncated: bool

    @property
    def duration_s(self) -> float:
        return float(self.samples.shape[-1] / self.sample_rate)


MAX_SOURCE_RATE = 768_000
"""The highest sample rate an upload may declare (studio formats stop at 768 kHz)."""


def open_container(
    file: BinaryIO, name: str, allowed: frozenset[str]
) -> av.container.InputContainer:
    """Open with FFmpeg's probing, then accept only the demuxers in `allowed`. An MP4's
    sample index is checked against the file first (FFmpeg allocates whatever it claims)."""
    check_mp4_index(file, name)
    file.seek(0)
    try:
        container = av.open(file, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UnsupportedMedia(
            f"{name}: not a supported media file (or truncated before its header ends)."
        ) from exc
    demuxers = set(container.format.name.split(","))
    if not demuxers & allowed:
        container.close()
        raise UnsupportedMedia(f"{name}: container {container.format.name} is not supported.")
    return container


@overload
def first_stream(
    container: av.container.InputContainer, kind: Literal["audio"], name: str
) -> av.AudioStream: ...


@overload
def first_stream(
    container: av.container.InputContainer, kind: Literal["video"], name: str
) -> av.VideoStream: ...


def first_stream(
    container: av.container.InputContainer, kind: Literal["audio", "video"], name: str
) -> av.AudioStream | av.VideoStream:
    """The container's first `kind` stream, one FFmpeg can decode: 415 `no_{kind}_stream`
    without one, 415 `unsupported_codec` when FFmpeg has no decoder for its codec."""
    streams = container.streams.audio if kind == "audio" else container.streams.video
    if not streams:
        raise UnsupportedMedia(f"{name}: no {kind} stream.", code=f"no_{kind}_stream")
    stream = streams[0]
    if stream.codec_context is None:  # a codec FFmpeg has no decoder for
        raise UnsupportedMedia(
            f"{name}: its {kind} codec is not supported.", code="unsupported_codec"
        )
    return stream


class DecodeStopped(Exception):
    """The caller no longer wants the decode (its client left): it ended early."""


StopAsked = Callable[[], bool]
"""Whether to stop now (checked between frames: a decode runs in a thread nothing can cancel)."""


def never() -> bool:
    return False


def decode_audio_stream(
    container: av.container.InputContainer,
    name: str,
    sample_rate: int,
    max_seconds: float,
    stereo: bool = False,
    stop: StopAsked = never,
) -> DecodedAudio:
    """Decode the first audio stream to float32 at `sample_rate` Hz, at most `max_seconds`:
    mono [N], or with `stereo` [2, N] (a mono clip on both sides). `stop()` is asked between
    frames: True ends the decode with `DecodeStopped`."""
    stream = first_stream(container, "audio", name)
    declared = stream.codec_context.sample_rate or stream.rate or 0
    if not 0 < declared <= MAX_SOURCE_RATE:
        # the resampler sizes its buffers from the declared rate: a header claiming a huge
        # one costs gigabytes before a sample is read
        raise UnsupportedMedia(
            f"{name}: a sample rate of {declared} Hz is not one audio is recorded at "
            f"(at most {MAX_SOURCE_RATE})",
            code="sample_rate_unsupported",
        )
    channels = 2 if stereo else 1
    layout = "stereo" if stereo else "mono"
    resampler = av.AudioResampler(format="flt", layout=layout, rate=sample_rate)
    max_samples = int(max_seconds * sample_rate)
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    truncated = False

    def planar(out: av.AudioFrame) -> npt.NDArray[np.float32]:
        """Packed float frames -> [channels, n]."""
        packed = out.to_ndarray().reshape(-1, channels).astype(np.float32, copy=False)
        return np.ascontiguousarray(packed.T)

    try:
        for frame in container.decode(stream):
            if stop():
                raise DecodeStopped(name)
            for out in resampler.resample(frame):
                chunk = planar(out)
                chunks.append(chunk)
                total += chunk.shape[1]
            if total >= max_samples:
                truncated = True
                break
        if not truncated:
            for out in resampler.resample(None):
                chunks.append(planar(out))
    except (av.error.FFmpegError, ValueError) as exc:
        raise InvalidInput(f"{name}: the audio is corrupt.", code="media_unreadable") from exc
    joined = (
        np.concatenate(chunks, axis=1)[:, :max_samples]
        if chunks
        else np.zeros((channels, 0), np.float32)
    )
    samples = joined if stereo else joined[0]
    if samples.size == 0:
        raise InvalidInput(f"{name}: the audio has no samples.", code="empty_audio")
    return DecodedAudio(
        samples=np.clip(samples, -1.0, 1.0),
        sample_rate=sample_rate,
        codec=stream.codec_context.name,
        truncated=truncated,
    )


def decode_audio(
    file: BinaryIO,
    filename: str | None,
    sample_rate: int,
    max_seconds: float,
    stereo: bool = False,
    stop: StopAsked = never,
) -> DecodedAudio:
    """Decode an uploaded audio clip (any common container) under the length cap."""
    name = filename or "audio"
    container = open_container(file, name, AUDIO_DEMUXERS)
    with container:
        return decode_audio_stream(container, name, sample_rate, max_seconds, stereo, stop)
