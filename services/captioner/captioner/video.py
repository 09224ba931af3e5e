"""Sample a video evenly with seeks, never decoding it whole.

For each of the N sample times the decoder seeks to the keyframe at or before the end of that
sample's tolerance window (half the sampling interval on each side) and takes the first frame
inside the window. With keyframes at least as dense as the sampling interval (phone and web
video: every 1-2 s) that is one decoded frame per sample. With sparse keyframes (a seek landing
more than `MAX_DECODE_PER_SAMPLE` frames early) it stops seeking and decodes forward once, so
the frames still span the clip, within a budget of N x `MAX_DECODE_PER_SAMPLE` decoded frames;
a clip that needs more is seen up to where the budget ran out, and the brief says so. Frames
are scaled while converting to RGB (swscale), so full-size frames are never kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import av
import av.error
import numpy as np
import numpy.typing as npt

from captioner.budget import padded_for_aspect
from captioner.media import MediaLimits, fit_within
from captioner.scenes import SceneLimits, SceneScan, plan_sections, scan_cuts
from captioner.speech import SAMPLE_RATE as SPEECH_RATE
from captioner.speech import speech_spans
from weavewave_common.audio import (
    DecodedAudio,
    DecodeStopped,
    StopAsked,
    decode_audio_stream,
    first_stream,
    never,
    open_container,
)
from weavewave_common.errors import InvalidInput, PayloadTooLarge
from weavewave_common.protocol import Span, VideoFacts

VIDEO_DEMUXERS = frozenset(
    {
        "mov",
        "mp4",
        "m4a",
        "3gp",
        "matroska",
        "webm",
        "avi",
        "mpegts",
        "flv",
        "ogg",
        "mpeg",
        "asf",
        "gif",
    }
)
MAX_DECODE_PER_SAMPLE = 120


@dataclass(frozen=True)
class DecodedVideo:
    frames: npt.NDArray[np.uint8]
    """RGB frames, shape [T, H, W, 3], T even (the model patches frames in pairs)."""
    timestamps: list[float]
    """Seconds of each distinct sampled frame."""
    duration_s: float
    codec: str
    width: int
    height: int
    source_fps: float | None
    has_audio_track: bool
    soundtrack: DecodedAudio | None
    """The decoded audio track, only when the model can hear it."""
    seen_until_s: float | None = None
    """Where the frames stop when decoding ran out of its budget before the end (sparse
    keyframes in a long clip); None when they span it all."""
    scan: SceneScan | None = None
    sections: tuple[tuple[float, float], ...] = ()
    """The sections the cuts were merged into, times to the millisecond; none when the video
    is one section (or was not scanned). Its frames were sampled section by section."""
    """The video's cuts, when they were looked for."""
    speech: list[tuple[float, float]] | None = None
    """Where people speak in the soundtrack, when looked for and there is one."""

    @property
    def metadata(self) -> dict[str, Any]:
        """What Qwen2.5-VL's processor needs to place frames in time (vLLM `(frames, meta)`)."""
        count = int(self.frames.shape[0])
        return {
            "total_num_frames": count,
            "fps": count / self.duration_s,
            "duration": self.duration_s,
            "video_backend": "pyav",
            "frames_indices": list(range(count)),
            "do_sample_frames": False,
        }

    def facts(self, filename: str | None, audio_used: bool) -> VideoFacts:
        return VideoFacts(
            filename=filename,
            codec=self.codec,
            width=self.width,
            height=self.height,
            duration_s=round(self.duration_s, 3),
            source_fps=self.source_fps,
            frames_used=len(self.timestamps),
            sampled_fps=round(len(self.timestamps) / self.duration_s, 3),
            has_audio_track=self.has_audio_track,
            audio_track_used=audio_used,
            cuts_found=len(self.scan.cuts) if self.scan is not None else None,
            speech=[Span(start_s=a, end_s=b) for a, b in self.speech]
            if self.speech is not None
            else None,
        )


def sample_times(duration_s: float, limits: MediaLimits) -> list[float]:
    """Centres of N equal slices of the video, N = duration x fps within [2, max_frames]."""
    count = min(limits.max_frames, max(2, round(duration_s * limits.frames_per_second)))
    return [(i + 0.5) * duration_s / count for i in range(count)]


def even_slices(duration_s: float, limits: MediaLimits) -> list[tuple[float, float]]:
    """The N equal slices of the video whose centres are `sample_times`: a sample's window."""
    count = len(sample_times(duration_s, limits))
    return [(i * duration_s / count, (i + 1) * duration_s / count) for i in range(count)]


def section_slices(
    plan: list[tuple[float, float]], duration_s: float, limits: MediaLimits
) -> list[tuple[float, float]]:
    """Sample windows that give every section of `plan` frames of its own: as many in all as
    an even sampling takes (at least two a section, within `max_frames`), shared by length, at
    least two each (one where the cap allows no more), each section cut in equal slices. The
    even slices when the cap cannot give every section a frame."""
    even = even_slices(duration_s, limits)
    count = min(limits.max_frames, max(len(even), 2 * len(plan)))
    if len(plan) < 2 or count < len(plan):
        return even
    floor = min(2, count // len(plan))
    lengths = [b - a for a, b in plan]
    wanted = [(count - floor * len(plan)) * length / sum(lengths) for length in lengths]
    shares = [floor + int(w) for w in wanted]
    by_remainder = sorted(range(len(plan)), key=lambda i: wanted[i] - int(wanted[i]), reverse=True)
    for i in by_remainder[: count - sum(shares)]:
        shares[i] += 1
    return [
        (a + j * (b - a) / k, a + (j + 1) * (b - a) / k - SLICE_GAP_S)
        for (a, b), k in zip(plan, shares, strict=True)
        for j in range(k)
    ]


SLICE_GAP_S = 0.001
"""A section's slices stop this short of their end, so a frame exactly on the next cut (a
keyframe, often) belongs to the next section, not to this one."""


def _duration(container: av.container.InputContainer, stream: av.video.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    raise InvalidInput("The video does not declare its duration.", code="media_unreadable")


class _Sampler:
    """Frames at sample times: by seeks while keyframes are dense; once a seek lands more than
    `MAX_DECODE_PER_SAMPLE` frames before its window (sparse keyframes), by one forward pass
    from there on, so the frames still span the whole clip; at most `budget` frames decoded in
    all, after which the samples end where the decoding stopped (and the brief says so)."""

    def __init__(
        self, container: av.container.InputContainer, stream: av.video.VideoStream, budget: int
    ) -> None:
        self._container = container
        self._stream = stream
        self._budget = budget
        self.decoded = 0
        self._forward: Iterator[av.VideoFrame] | None = None
        self._pending: av.VideoFrame | None = None

    @property
    def exhausted(self) -> bool:
        return self.decoded >= self._budget

    def frame_at(self, window: tuple[float, float], after: float) -> av.VideoFrame | None:
        """First frame with time in `window` and after `after` (the previous sample), or None."""
        if self._forward is not None:
            return self._next_in(window, after)
        time_base = self._stream.time_base or Fraction(1, 1000)
        self._container.seek(
            int(window[1] / time_base), stream=self._stream, backward=True, any_frame=False
        )
        frames = self._container.decode(self._stream)
        for count, frame in enumerate(frames, start=1):
            self.decoded += 1
            when = frame.time
            if when is None or when <= after:
                continue
            if when >= window[0]:
                return frame if when <= window[1] else None
            if count >= MAX_DECODE_PER_SAMPLE or self.exhausted:
                self._forward = frames  # sparse keyframes: no more seeks, decode on from here
                return self._next_in(window, after)
        return None

    def _next_in(self, window: tuple[float, float], after: float) -> av.VideoFrame | None:
        assert self._forward is not None
        while True:
            frame, self._pending = self._pending, None
            if frame is None:
                if self.exhausted:
                    return None
                frame = next(self._forward, None)
                if frame is None:
                    return None
                self.decoded += 1
            when = frame.time
            if when is None or when <= after or when < window[0]:
                continue
            if when > window[1]:
                self._pending = frame  # it belongs to a later window
                return None
            return frame


def sample_video(
    file: BinaryIO,
    filename: str | None,
    limits: MediaLimits,
    want_audio: bool,
    stop: StopAsked = never,
    scenes: SceneLimits | None = None,
    speech: bool = False,
) -> DecodedVideo:
    """Sample frames evenly (about `frames_per_second`, at most `max_frames`), downscaled;
    with `scenes`, find the video's cuts too; with `speech`, where its soundtrack speaks."""
    name = filename or "video"
    container = open_container(file, name, VIDEO_DEMUXERS)
    with container:
        stream = first_stream(container, "video", name)
        duration = _duration(container, stream)
        if duration > limits.max_video_seconds:
            raise PayloadTooLarge(
                f"{name}: {duration:.1f} s is over the {limits.max_video_seconds:.0f} s limit.",
                code="video_too_long",
            )
        if duration <= 0 or not stream.width or not stream.height:
            raise InvalidInput(f"{name}: the video is empty.", code="media_unreadable")
        size = fit_within(stream.width, stream.height, limits.max_frame_pixels)
        scan = None
        sections: tuple[tuple[float, float], ...] = ()
        windows = even_slices(duration, limits)
        if scenes is not None:  # cuts first: every section gets frames of its own
            try:
                scan = scan_cuts(container, stream, duration, scenes, stop)
            except (av.error.FFmpegError, ValueError) as exc:
                raise InvalidInput(
                    f"{name}: the video is corrupt.", code="media_unreadable"
                ) from exc
            plan = plan_sections(scan.cuts, duration, scenes.min_section_s, scenes.max_sections)
            windows = section_slices(plan, duration, limits)
            if len(plan) > 1:
                sections = tuple((round(a, 3), round(b, 3)) for a, b in plan)
        frames: list[npt.NDArray[np.uint8]] = []
        stamps: list[float] = []
        reach = 0.0  # half the window of the last frame kept: how far past it it was seen
        sampler = _Sampler(container, stream, len(windows) * MAX_DECODE_PER_SAMPLE)
        try:
            for window in windows:
                if stop():
                    raise DecodeStopped(name)
                if sampler.exhausted:
                    break
                previous = stamps[-1] if stamps else -1.0
                frame = sampler.frame_at(window, previous)
                if frame is not None:
                    rgb = frame.reformat(width=size[0], height=size[1], format="rgb24")
                    frames.append(np.asarray(rgb.to_ndarray(), dtype=np.uint8))
                    stamps.append(float(frame.time or 0.0))
                    reach = (window[1] - window[0]) / 2
        except (av.error.FFmpegError, ValueError) as exc:
            raise InvalidInput(f"{name}: the video is corrupt.", code="media_unreadable") from exc
        if not frames:
            raise InvalidInput(f"{name}: no frame could be decoded.", code="media_unreadable")
        spoken = None
        if speech and container.streams.audio:
            container.seek(0)
            whole = decode_audio_stream(
                container, name, SPEECH_RATE, limits.max_video_seconds, stop=stop
            )
            spoken = speech_spans(whole.samples)
        soundtrack = None
        if want_audio and container.streams.audio:
            container.seek(0)
            soundtrack = decode_audio_stream(
                container, name, limits.audio_sample_rate, limits.max_audio_seconds, stop=stop
            )
        rate = stream.average_rate
        return DecodedVideo(
            frames=_pad_for_aspect(_even(np.stack(frames))),
            timestamps=stamps,
            duration_s=duration,
            codec=stream.codec_context.name,
            width=stream.width,
            height=stream.height,
            source_fps=float(rate) if rate else None,
            has_audio_track=bool(container.streams.audio),
            soundtrack=soundtrack,
            seen_until_s=stamps[-1] + reach if sampler.exhausted else None,
            scan=scan,
            sections=sections,
            speech=spoken,
        )


def _pad_for_aspect(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Centre frames more elongated than the processor takes (200:1) on black."""
    height, width = int(frames.shape[1]), int(frames.shape[2])
    new_width, new_height = padded_for_aspect(width, height)
    if (new_width, new_height) == (width, height):
        return frames
    top, left = (new_height - height) // 2, (new_width - width) // 2
    pad = ((0, 0), (top, new_height - height - top), (left, new_width - width - left), (0, 0))
    return np.pad(frames, pad)


def _even(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Repeat the last frame when the count is odd (frames enter the model two by two)."""
    if frames.shape[0] % 2:
        return np.concatenate([frames, frames[-1:]])
    return frames
