"""Where a video cuts, and the sections a film composer would score it in.

Cuts are found by PySceneDetect's `ContentDetector` (HSV and edge change between consecutive
frames, the library's default for hard cuts), fed thumbnails taken straight from the decoded
picture's planes (nearest-neighbour, no colour conversion of the full frame), so no full-size
frame is ever converted or kept. Decoding every frame costs about a second per minute of 720p
on one core, so the scan is guided by keyframes: it first decodes the keyframes alone (the
decoder skips every other frame) and compares each with the one before by their colour
histograms, which motion within a shot hardly moves; only a stretch between two keyframes that
differ in colour, and the stretch that ends the video, is decoded frame by frame, and that
decoding stops at the first cut after which the picture already looks like the stretch's end.
A cut inside a stretch whose ends have the same colours (two shots of one scene, or a scene
shorter than the keyframe interval between them) is missed, and so is a second cut after one
whose shot already has the end's colours (A, B, A' within one interval); such cuts are rarely
places a composer would change the music, and sections are seconds long anyway. Encoders
that put a keyframe on every cut (x264's `scenecut`, most cameras) make every refined stretch
end on its cut.

Cuts become sections by merging: the shortest section joins its shorter neighbour until every
section is at least `min_section_s` long and there are at most `max_sections`; the boundaries
left are cuts. A video of ten thousand one-frame scenes is merged in one pass over a small
array per merge, never turned into a ten-thousand-item brief.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import cv2
import numpy as np
import numpy.typing as npt
from scenedetect import ContentDetector, FrameTimecode

from weavewave_common.audio import DecodeStopped, StopAsked, never

SCAN_WIDTH = 160
"""Width frames are scaled to for cut detection (height keeps the aspect): cuts are changes
of the whole picture, visible at a thumbnail's size."""
HISTOGRAM_BINS = (32, 16, 16)
"""Bins of the Y, U and V histograms that compare two keyframes."""
COLOUR_CHANGE = 0.25
"""Two keyframes whose histograms' correlation falls below 1 minus this, in any plane, differ
in colour: the stretch between them is decoded. Motion within a shot keeps the correlation
near 1; a false alarm costs one interval's decoding, never a cut."""
PLANAR_YUV = {
    "yuv420p",
    "yuvj420p",
    "yuv422p",
    "yuvj422p",
    "yuv444p",
    "yuvj444p",
    "yuv440p",
    "yuvj440p",
}
"""8-bit planar formats whose planes are read directly; any other is converted first."""


@dataclass(frozen=True)
class SceneLimits:
    """How cuts are found and merged, from the captioner's settings."""

    min_section_s: float = 6.0
    max_sections: int = 8
    threshold: float = 27.0
    """PySceneDetect's content threshold (its default): a hard cut scores far above it."""
    max_scan_frames: int = 36_000
    """Frames decoded to find cuts, at most (20 minutes at 30 fps); beyond that the rest of the
    video is scored as one section from the last cut found."""


@dataclass(frozen=True)
class SceneScan:
    cuts: list[float]
    """Times (seconds) of the first frame of each new shot, ascending, none at 0."""
    frames_decoded: int
    complete: bool
    """False when the scan ran out of its frame budget before the end."""


class Thumbnail:
    """A decoded frame at scan size: its time and its Y, U and V planes at one resolution."""

    def __init__(self, frame: av.VideoFrame, size: tuple[int, int]) -> None:
        if frame.format.name not in PLANAR_YUV:
            frame = frame.reformat(format="yuv420p")
        self.time = float(frame.time or 0.0)
        self.yuv = np.dstack(
            [
                cv2.resize(_plane(plane), size, interpolation=cv2.INTER_NEAREST)
                for plane in frame.planes[:3]
            ]
        )

    def bgr(self) -> npt.NDArray[np.uint8]:
        """The picture as PySceneDetect's detectors take it."""
        return np.asarray(cv2.cvtColor(self.yuv, cv2.COLOR_YUV2BGR), dtype=np.uint8)

    @functools.cached_property
    def histograms(self) -> list[npt.NDArray[np.float32]]:
        """Each plane's histogram (computed for keyframes and cuts only; their correlation
        needs no normalising)."""
        return [
            np.asarray(cv2.calcHist([self.yuv], [channel], None, [bins], [0, 256]), np.float32)
            for channel, bins in enumerate(HISTOGRAM_BINS)
        ]

    def same_colours(self, other: Thumbnail) -> bool:
        """Whether the two pictures' colour distributions match (see `COLOUR_CHANGE`)."""
        return all(
            cv2.compareHist(a, b, cv2.HISTCMP_CORREL) >= 1.0 - COLOUR_CHANGE
            for a, b in zip(self.histograms, other.histograms, strict=True)
        )


def _plane(plane: av.video.plane.VideoPlane) -> npt.NDArray[np.uint8]:
    """One plane's pixels without copying (the decoder pads each line to `line_size`)."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
    return rows[: plane.height, : plane.width]


class _Scorer:
    """PySceneDetect's content detector over one run of consecutive frames."""

    def __init__(self, threshold: float, fps: float) -> None:
        self._detector = ContentDetector(threshold=threshold, min_scene_len=0)
        self._fps = fps
        self._index = 0

    def is_cut(self, thumbnail: Thumbnail) -> bool:
        """Whether `thumbnail` starts a new shot (the first frame of a run never does)."""
        timecode = FrameTimecode(self._index, fps=self._fps)
        self._index += 1
        return bool(self._detector.process_frame(timecode, thumbnail.bgr()))


@dataclass(frozen=True)
class _Stretch:
    """Frames from the keyframe at `start` to `end`; `last` is the keyframe at `end` (None for
    the stretch that ends the video)."""

    start: float
    end: float
    last: Thumbnail | None


class _ScanDecoder:
    """A decoder of the video stream of its own, so the scan can decode loosely without
    touching the stream's decoder, which samples the frames the model sees: it skips the
    in-loop deblocking filter (blocky edges do not move a thumbnail's colours; H.264 decodes
    about 40 % faster without it) and is fed only the packets the scan wants."""

    def __init__(self, container: av.container.InputContainer, stream: av.video.VideoStream):
        self._container = container
        self._stream = stream
        template = stream.codec_context
        context = cast(av.VideoCodecContext, av.CodecContext.create(template.name, "r"))
        context.extradata = template.extradata
        context.width, context.height = template.width, template.height
        context.pix_fmt = template.pix_fmt
        context.options = {"skip_loop_filter": "all"}
        self._context = context

    def frames_from(self, start: float, keyframes_only: bool = False) -> Iterator[av.VideoFrame]:
        """Frames from the keyframe at or before `start` on (only keyframes: every other packet
        is left undecoded)."""
        time_base = self._stream.time_base or Fraction(1, 1000)
        self._container.seek(
            int(start / time_base), stream=self._stream, backward=True, any_frame=False
        )
        self._context.flush_buffers()
        for packet in self._container.demux(self._stream):
            if keyframes_only and packet.size and not packet.is_keyframe:
                continue
            for frame in self._context.decode(packet):
                if isinstance(frame, av.VideoFrame) and frame.time is not None:
                    yield frame


def scan_cuts(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    duration_s: float,
    limits: SceneLimits,
    stop: StopAsked = never,
) -> SceneScan:
    """The video's hard cuts, keyframe-guided (see the module docstring)."""
    width = min(SCAN_WIDTH, stream.width or SCAN_WIDTH)
    height = max(2, round(width * (stream.height or 1) / max(1, stream.width or 1)) // 2 * 2)
    size = (width, height)
    fps = float(stream.average_rate or 30)
    decoder = _ScanDecoder(container, stream)
    keyframes: list[Thumbnail] = []
    for frame in decoder.frames_from(0.0, keyframes_only=True):
        if stop():
            raise DecodeStopped("video")
        keyframes.append(Thumbnail(frame, size))
        if len(keyframes) >= limits.max_scan_frames:
            break
    decoded = len(keyframes)
    stretches = [
        _Stretch(before.time, after.time, after)
        for before, after in zip(keyframes, keyframes[1:], strict=False)
        if not before.same_colours(after)
    ]
    last = keyframes[-1].time if keyframes else 0.0
    stretches.append(_Stretch(last, duration_s + 1.0, None))
    cuts: list[float] = []
    complete = True
    for stretch in stretches:
        found, count, finished = _cuts_between(decoder, size, fps, stretch, limits, decoded, stop)
        decoded += count
        cuts.extend(found)
        if not finished:
            complete = False
            break
    in_range = sorted({round(c, 3) for c in cuts if 0 < c < duration_s})
    return SceneScan(cuts=in_range, frames_decoded=decoded, complete=complete)


def _cuts_between(
    decoder: _ScanDecoder,
    size: tuple[int, int],
    fps: float,
    stretch: _Stretch,
    limits: SceneLimits,
    spent: int,
    stop: StopAsked,
) -> tuple[list[float], int, bool]:
    """Cuts among the frames of `stretch` (both keyframes included), up to the first cut whose
    picture has the colours of the stretch's last keyframe; returns them, the frames decoded,
    and whether the budget held."""
    scorer = _Scorer(limits.threshold, fps)
    cuts: list[float] = []
    count = 0
    for frame in decoder.frames_from(stretch.start):
        if stop():
            raise DecodeStopped("video")
        when = float(frame.time)
        if when < stretch.start - 1e-6:
            continue
        if spent + count >= limits.max_scan_frames:
            return cuts, count, False
        count += 1
        thumbnail = Thumbnail(frame, size)
        if scorer.is_cut(thumbnail):
            cuts.append(when)
            if stretch.last is not None and thumbnail.same_colours(stretch.last):
                break  # the stretch's end is already in view: no further cut to look for
        if when >= stretch.end - 1e-6:
            break
    return cuts, count, True


def plan_sections(
    cuts: list[float], duration_s: float, min_section_s: float, max_sections: int
) -> list[tuple[float, float]]:
    """Sections (start, end) covering [0, duration_s], each at least `min_section_s` long (a
    video shorter than that is one section), at most `max_sections`, boundaries on `cuts`."""
    inner = [c for c in sorted(set(cuts)) if 0 < c < duration_s]
    bounds = np.array([0.0, *inner, duration_s], dtype=np.float64)
    while len(bounds) > 2:
        lengths = np.diff(bounds)
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= min_section_s and len(lengths) <= max_sections:
            break
        bounds = np.delete(bounds, _boundary_to_drop(lengths, shortest))
    return [(float(a), float(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _boundary_to_drop(lengths: npt.NDArray[np.float64], shortest: int) -> int:
    """Index in the bounds of the boundary merging section `shortest` with its shorter
    neighbour (the only one at either end)."""
    if shortest == 0:
        return 1
    if shortest == len(lengths) - 1:
        return shortest
    return shortest if lengths[shortest - 1] <= lengths[shortest + 1] else shortest + 1


BEAT_TOLERANCE_S = 0.06
"""A cut within this of a beat is heard on the beat (under a 32nd note at 120 BPM)."""
TEMPO_STRETCH = 0.15
"""How far from the model's tempo the choice may go (15 %: the same feel, a little faster or
slower)."""


@dataclass(frozen=True)
class TempoChoice:
    bpm: int
    on_beat: int
    """Boundaries within `BEAT_TOLERANCE_S` of a beat at `bpm`."""
    worst_s: float
    """The largest distance from a boundary to its nearest beat."""
    on_beat_as_suggested: int = 0
    """Boundaries on a beat at the suggested tempo (the choice is the suggestion unless it
    puts more on beats)."""


def beat_offsets(starts: list[float], bpm: float) -> list[float]:
    """Each start's distance to the nearest beat, the music's first beat at 0."""
    period = 60.0 / bpm
    return [abs(t - round(t / period) * period) for t in starts]


def tempo_for_cuts(starts: list[float], suggested_bpm: int) -> TempoChoice:
    """The whole tempo within `TEMPO_STRETCH` of `suggested_bpm` (and 40..220) that puts the
    most section boundaries on a beat; among equals, the smallest worst miss, then the closest
    to the suggestion. With no boundary, the suggestion."""
    low = max(40, int(suggested_bpm * (1 - TEMPO_STRETCH)))
    high = min(220, int(suggested_bpm * (1 + TEMPO_STRETCH)) + 1)
    as_suggested = _on_beat(beat_offsets(starts, suggested_bpm))
    best: tuple[int, float, int] | None = None
    choice = TempoChoice(suggested_bpm, as_suggested, 0.0, as_suggested)
    for bpm in sorted(range(low, high + 1), key=lambda b: abs(b - suggested_bpm)):
        offsets = beat_offsets(starts, bpm)
        on_beat = _on_beat(offsets)
        worst = max(offsets, default=0.0)
        key = (-on_beat, round(worst, 4), abs(bpm - suggested_bpm))
        if best is None or key < best:
            best = key
            choice = TempoChoice(bpm, on_beat, round(worst, 4), as_suggested)
    return choice


def _on_beat(offsets: list[float]) -> int:
    return sum(1 for o in offsets if o <= BEAT_TOLERANCE_S)
