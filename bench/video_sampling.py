"""Video preprocessing benchmark: seek-based sampling vs decoding every frame.

Generates a 60 s 1280x720 H.264 clip (30 fps, a keyframe every 2 s as phone and web video
have), then times, side by side in one run, the captioner's sampler taking 32 frames and a
plain decode of every frame. Prints seconds per clip and the ratio. Run with one thread
(OMP_NUM_THREADS=1; the decoders are single-threaded here) via `make bench-video`.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captioner.media import MediaLimits  # noqa: E402
from captioner.video import sample_video  # noqa: E402
from tests.media_factory import video_bytes  # noqa: E402

T = TypeVar("T")


def decode_all(data: bytes) -> int:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        return sum(1 for _ in container.decode(stream))


def best_of(runs: int, call: Callable[[], T]) -> tuple[float, T]:
    """Fastest of `runs` calls (the least disturbed by other work) and the last result."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    print(f"encoding a {args.seconds:.0f} s 1280x720 H.264 clip ...", flush=True)
    data = video_bytes(seconds=args.seconds, fps=30, width=1280, height=720, gop=60)
    limits = MediaLimits(max_frames=args.frames, frames_per_second=1.0)

    sampled_s, video = best_of(
        args.runs, lambda: sample_video(io.BytesIO(data), "clip.mp4", limits, want_audio=False)
    )
    all_s, count = best_of(max(1, args.runs // 2), lambda: decode_all(data))
    frames = len(video.timestamps)
    print(f"clip: {len(data) / 1e6:.1f} MB, {count} frames")
    print(
        f"seek-based sampling ({frames} frames): {sampled_s:.3f} s per clip (best of {args.runs})"
    )
    print(f"decode every frame ({count} frames): {all_s:.3f} s per clip")
    print(f"ratio decode-all / sampling: {all_s / sampled_s:.1f}x")
    stamps = video.timestamps
    spread = statistics.pstdev(stamps)
    print(f"sampled: first {stamps[0]:.2f} s, last {stamps[-1]:.2f} s, spread {spread:.1f} s")


if __name__ == "__main__":
    main()
