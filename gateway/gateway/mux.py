"""Put the generated music back into the uploaded video as its soundtrack (`mux=true`).

The video stream is copied packet by packet (never re-encoded: same quality, little CPU); the
music, composed as WAV for exactly the video's length, is encoded to AAC; any soundtrack the
video had is dropped. Packets are interleaved by time, so memory stays at a few packets however
long the video is (the AAC track, a few MB at most, is encoded first).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any

import av

from weavewave_common.errors import InvalidInput, UnsupportedMedia
from weavewave_common.mp4_index import check_mp4_index

AAC_BITRATE = 128_000  # ample for music; AAC-LC allows at most 6 bits per sample per channel


def _encode_aac(wav: Path, out: Any) -> tuple[Any, list[Any]]:
    """The music as AAC packets for `out` (an output container), and the stream they belong to."""
    with av.open(str(wav), mode="r") as music:
        source = music.streams.audio[0]
        layout = "mono" if source.channels == 1 else "stereo"  # a WAV names no layout
        stream = out.add_stream("aac", rate=source.rate)
        stream.layout = layout
        stream.format = "fltp"  # FFmpeg's AAC encoder takes planar float only
        stream.bit_rate = AAC_BITRATE
        planar = av.AudioResampler(format="fltp", layout=layout, rate=source.rate)
        packets = [
            packet
            for frame in music.decode(source)
            for converted in planar.resample(frame)
            for packet in stream.encode(converted)
        ]
        packets.extend(p for converted in planar.resample(None) for p in stream.encode(converted))
        packets.extend(stream.encode(None))
    return stream, packets


def video_seconds(video: IO[bytes]) -> float:
    """The video's length, from its container (or its picture stream)."""
    check_mp4_index(video, "video")
    try:
        with av.open(video, mode="r") as container:
            if container.duration:
                return float(container.duration / av.time_base)
            stream = container.streams.video[0]
            return float((stream.duration or 0) * (stream.time_base or 0))
    except (av.error.FFmpegError, IndexError) as exc:
        raise InvalidInput("video: its length cannot be read.", code="media_unreadable") from exc
    finally:
        video.seek(0)


def check_muxable(video: IO[bytes]) -> None:
    """Refuse (415) a video whose picture cannot be copied into MP4 (VP8 WebM, what browsers
    record, among them), before any work: found only while muxing, after the music, it could
    only break a response already under way."""
    check_mp4_index(video, "video")
    try:
        with av.open(video, mode="r") as source, av.open(io.BytesIO(), "w", format="mp4") as out:
            if not source.streams.video:
                raise InvalidInput("video: no video stream to put the music in.", code="no_video")
            picture = source.streams.video[0]
            try:
                out.add_stream_from_template(picture)
            except ValueError as exc:
                name = picture.codec_context.name if picture.codec_context else "unknown"
                raise UnsupportedMedia(
                    f"video: its codec ({name}) cannot go into MP4; send H.264, HEVC, VP9 or "
                    "AV1, or leave mux off for the music alone.",
                    code="video_not_muxable",
                ) from exc
    except av.error.FFmpegError as exc:
        raise InvalidInput("video: cannot be read for muxing.", code="media_unreadable") from exc
    finally:
        video.seek(0)


def mux_soundtrack(video: IO[bytes], music_wav: Path, out_path: Path) -> None:
    """Write `out_path` (MP4): `video`'s picture with `music_wav` as its only soundtrack."""
    video.seek(0)
    try:
        source = av.open(video, mode="r")
    except av.error.FFmpegError as exc:
        raise InvalidInput("video: cannot be read for muxing.", code="media_unreadable") from exc
    with source, av.open(str(out_path), mode="w", format="mp4") as out:
        if not source.streams.video:
            raise InvalidInput("video: no video stream to put the music in.", code="no_video")
        picture = source.streams.video[0]
        copied = out.add_stream_from_template(picture)
        audio_stream, audio_packets = _encode_aac(music_wav, out)
        pending = iter(audio_packets)
        next_audio = next(pending, None)
        for packet in source.demux(picture):
            if packet.dts is None:
                continue
            at = float(packet.dts * packet.time_base)
            while next_audio is not None and float(next_audio.dts * next_audio.time_base) <= at:
                next_audio.stream = audio_stream
                out.mux(next_audio)
                next_audio = next(pending, None)
            packet.stream = copied
            out.mux(packet)
        while next_audio is not None:
            next_audio.stream = audio_stream
            out.mux(next_audio)
            next_audio = next(pending, None)
