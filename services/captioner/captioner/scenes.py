"""Where a video cuts, and the sections a film composer would score it in.

Cuts are found by PySceneDetect's `ContentDetector` (HSV and edge change between consecutive
frames, the library's default for hard cuts), fed frames that PyAV decodes and scales down while
converting (swscale), so no full-size frame is ever kept. Decoding every frame costs about a
second per minute of 720p on one core, most of it in the decoder; so the scan is guided by
keyframes: it first decodes the keyframes alone (the decoder skips every other frame), and
decodes the frames between two keyframes only where those two differ, or where the stretch ends
the video. A cut inside a stretch whose ends look alike (a scene shorter than the keyframe
interval, between two shots of one scene) is missed; such a scene is far shorter than a
section, so the plan would have merged it anyway. Encoders that put a keyframe on every cut
(x264's `scenecut`, most cameras) make the refinement short.

Cuts become sections by merging: the shortest section joins its shorter neighbour until every
section is at least `min_section_s` long and there are at most `max_sections`; the boundaries
left are cuts. A video of ten thousand one-frame scenes is merged in one pass over a small
array per merge, never turned into a ten-thousand-item brief.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from scenedetect import ContentDetector, FrameTimecode

from weavewave_common.audio import DecodeStopped, StopAsked, never

SCAN_WIDTH = 160
"""Width frames are scaled to for cut detection (height keeps the aspect): cuts are changes
of the whole picture, visible at a thumbnail's size."""
KEYFRAME_THRESHOLD_RATIO = 0.5
"""Two keyframes whose content score reaches this fraction of the cut threshold have the
frames between them decoded (motion over a keyframe interval scores higher than between two
frames, so the gate is generous: a false alarm costs one interval's decoding, never a cut)."""


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


class _Scorer:
    """PySceneDetect's content detector over one run of consecutive frames."""

    def __init__(self, threshold: float, fps: float) -> None:
        self._detector = ContentDetector(threshold=threshold, min_scene_len=0)
        self._fps = fps
        self._index = 0

    def is_cut(self, frame: npt.NDArray[np.uint8]) -> bool:
        """Whether `frame` starts a new shot (the first frame of a run never does)."""
        timecode = FrameTimecode(self._index, fps=self._fps)
        self._index += 1
        return bool(self._detector.process_frame(timecode, frame))


def _small(frame: av.VideoFrame, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    return np.asarray(frame.reformat(width=size[0], height=size[1], format="bgr24").to_ndarray())


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
    time_base = stream.time_base or Fraction(1, 1000)
    keyframes = _keyframes(container, stream, size, fps, limits, stop)
    decoded = len(keyframes)
    coarse = _Scorer(limits.threshold * KEYFRAME_THRESHOLD_RATIO, fps)
    stretches: list[tuple[float, float]] = []
    for i, (when, image) in enumerate(keyframes):
        if coarse.is_cut(image):
            stretches.append((keyframes[i - 1][0], when))
    last = keyframes[-1][0] if keyframes else 0.0
    stretches.append((last, duration_s + 1.0))  # the last stretch is never seen changing
    cuts: list[float] = []
    complete = True
    for start, end in stretches:
        found, count, finished = _cuts_between(
            container, stream, time_base, size, fps, (start, end), limits, decoded, stop
        )
        decoded += count
        cuts.extend(found)
        if not finished:
            complete = False
            break
    in_range = sorted({round(c, 3) for c in cuts if 0 < c < duration_s})
    return SceneScan(cuts=in_range, frames_decoded=decoded, complete=complete)


def _keyframes(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    size: tuple[int, int],
    fps: float,
    limits: SceneLimits,
    stop: StopAsked,
) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    """Every keyframe, small, with its time: the decoder skips all other frames."""
    context = stream.codec_context
    context.skip_frame = "NONKEY"
    container.seek(0, stream=stream)
    found: list[tuple[float, npt.NDArray[np.uint8]]] = []
    try:
        for frame in container.decode(stream):
            if stop():
                raise DecodeStopped("video")
            if frame.time is not None:
                found.append((float(frame.time), _small(frame, size)))
            if len(found) >= limits.max_scan_frames:
                break
    finally:
        context.skip_frame = "DEFAULT"
    return found


def _cuts_between(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    time_base: Fraction,
    size: tuple[int, int],
    fps: float,
    span: tuple[float, float],
    limits: SceneLimits,
    spent: int,
    stop: StopAsked,
) -> tuple[list[float], int, bool]:
    """Cuts among the frames from the keyframe at `span[0]` to the one at `span[1]`
    (inclusive); returns them, the frames decoded, and whether the budget held."""
    container.seek(int(span[0] / time_base), stream=stream, backward=True, any_frame=False)
    scorer = _Scorer(limits.threshold, fps)
    cuts: list[float] = []
    count = 0
    for frame in container.decode(stream):
        if stop():
            raise DecodeStopped("video")
        when = frame.time
        if when is None or when < span[0] - 1e-6:
            continue
        if spent + count >= limits.max_scan_frames:
            return cuts, count, False
        count += 1
        if scorer.is_cut(_small(frame, size)):
            cuts.append(float(when))
        if when >= span[1] - 1e-6:
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
    best: tuple[int, float, int] | None = None
    choice = TempoChoice(suggested_bpm, 0, 0.0)
    for bpm in sorted(range(low, high + 1), key=lambda b: abs(b - suggested_bpm)):
        offsets = beat_offsets(starts, bpm)
        on_beat = sum(1 for o in offsets if o <= BEAT_TOLERANCE_S)
        worst = max(offsets, default=0.0)
        key = (-on_beat, round(worst, 4), abs(bpm - suggested_bpm))
        if best is None or key < best:
            best = key
            choice = TempoChoice(bpm, on_beat, round(worst, 4))
    return choice
