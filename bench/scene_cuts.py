"""Cut detection benchmark: a generated clip with known hard cuts and one cross-fade, scanned
by the captioner (`captioner.scenes`), beside the frame sampling it runs with.

Prints recall and precision of the hard cuts (a cut found within one frame of a true one is a
hit), whether the fade was found, the seconds per minute of video on one core (run pinned:
`make bench-scoring` uses `taskset -c 0`), and how many frames the keyframe-guided scan decoded
against all of them. Two encodings of the same picture: x264 `ultrafast` (no keyframe on the
cuts) and `veryfast` (scenecut: a keyframe on each cut, as most encoders put).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captioner.media import MediaLimits  # noqa: E402
from captioner.scenes import (  # noqa: E402
    BEAT_TOLERANCE_S,
    SceneLimits,
    plan_sections,
    scan_cuts,
    tempo_for_cuts,
)
from captioner.video import sample_video  # noqa: E402
from tests.media_factory import scene_frame  # noqa: E402

CUTS = [4.3, 9.0, 13.6, 17.2, 22.9, 27.5, 31.0, 36.4, 41.2, 44.8, 49.7, 55.1]
FADE = (25.0, 26.0)
"""A one-second cross-dissolve inside the shot that starts at 22.9 s, into a new shot."""
FADED_SHOT = CUTS.index(22.9) + 1


def clip(seconds: float, fps: int, width: int, height: int, preset: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 2 * fps  # a keyframe every 2 s, as web video
        stream.options = {"preset": preset}
        for i in range(int(seconds * fps)):
            t = i / fps
            scene = sum(1 for c in CUTS if t >= c - 1e-9)
            image = scene_frame(scene, i, width, height).astype(np.float32)
            if scene == FADED_SHOT and t >= FADE[0]:
                mix = min(1.0, (t - FADE[0]) / (FADE[1] - FADE[0]))
                other = scene_frame(scene + 20, i, width, height).astype(np.float32)
                image = (1 - mix) * image + mix * other
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def best(runs: int, call: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def scan(data: bytes, seconds: float) -> Any:
    with av.open(io.BytesIO(data), mode="r") as container:
        return scan_cuts(container, container.streams.video[0], seconds, SceneLimits())


def beats_on_cuts(plans: int = 500) -> tuple[float, float]:
    """Over random plans (sections of 6 to 20 s in a minute, a suggested tempo of 70 to 140
    BPM): the share of section starts on a beat at the suggested tempo, and at the chosen one."""
    rng = np.random.default_rng(3)
    before = after = total = 0
    for _ in range(plans):
        cuts = list(np.cumsum(rng.uniform(6, 20, size=8)))
        starts = [s for s, _ in plan_sections([c for c in cuts if c < 60], 60.0, 6.0, 8)][1:]
        suggested = int(rng.integers(70, 141))
        choice = tempo_for_cuts(starts, suggested)
        before += choice.on_beat_as_suggested
        after += choice.on_beat
        total += len(starts)
    return before / total, after / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    fps = 30
    truth = [c for c in CUTS if c < args.seconds]
    limits = MediaLimits(max_frames=32, frames_per_second=1.0)
    for preset in ("ultrafast", "veryfast"):
        print(
            f"encoding {args.seconds:.0f} s {args.width}x{args.height} ({preset}) ...", flush=True
        )
        data = clip(args.seconds, fps, args.width, args.height, preset)
        scan_s, found = best(args.runs, lambda data=data: scan(data, args.seconds))
        sample_s, _ = best(
            args.runs,
            lambda data=data: sample_video(io.BytesIO(data), "c.mp4", limits, want_audio=False),
        )
        hits = [c for c in found.cuts if any(abs(c - t) <= 1.5 / fps for t in truth)]
        recall = len({min(truth, key=lambda t, c=c: abs(t - c)) for c in hits}) / len(truth)
        precision = len(hits) / max(1, len(found.cuts))
        fade = any(FADE[0] - 0.1 <= c <= FADE[1] + 0.1 for c in found.cuts)
        per_minute = scan_s * 60 / args.seconds
        total = int(args.seconds * fps)
        print(
            f"{preset}: hard cuts recall {recall:.2f}, precision {precision:.2f} "
            f"({len(found.cuts)} found, {len(truth)} true); fade found: {fade}"
        )
        print(
            f"{preset}: scan {scan_s:.2f} s = {per_minute:.2f} s per minute of video; "
            f"frame sampling {sample_s:.3f} s; decoded {found.frames_decoded} of {total} "
            f"frames ({found.frames_decoded / total:.0%})"
        )
    suggested, chosen = beats_on_cuts()
    print(
        f"section starts on a beat (within {BEAT_TOLERANCE_S * 1000:.0f} ms), random plans: "
        f"{suggested:.0%} at the model's tempo, {chosen:.0%} at the tempo chosen within 15 %"
    )


if __name__ == "__main__":
    main()
