"""The judge's cost and accuracy: CPU seconds per minute of audio (a stereo 44.1 kHz take, on
one core: `make bench-judge` pins it), and how many known answers it gets right — tempo on
click tracks from 60 to 180 BPM (within 2 %, or half or double named), the key of cadences in
all 24 keys."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.judge.measure import Asked, measure  # noqa: E402
from gateway.judge.rhythm import tempo_of  # noqa: E402
from gateway.judge.tonality import PITCHES, Key, Mode, key_of  # noqa: E402
from tests.media_factory import cadence, click_track  # noqa: E402

RATE = 44100
MIR_RATE = 22050


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the timed take's length")
    parser.add_argument("--clip-seconds", type=float, default=12.0, help="each known clip's")
    args = parser.parse_args()
    mono = cadence(9, True, args.seconds, RATE) + click_track(100, args.seconds, RATE)
    take = np.stack([mono, mono * 0.9]).astype(np.float32)
    measure(take[:, : 5 * RATE], RATE, Asked())  # the first call compiles librosa's kernels
    started = time.thread_time()
    analysis = measure(take, RATE, Asked(tempo_bpm=100, key="A minor"))
    per_minute = (time.thread_time() - started) * 60 / args.seconds
    print(
        f"judge: {per_minute:.2f} CPU s per minute of stereo 44.1 kHz audio "
        f"(tempo {analysis.tempo.bpm} {analysis.tempo.agreement}, key {analysis.key.key} "
        f"{analysis.key.agreement})"
    )
    tempi = range(60, 181, 10)
    right = 0
    for bpm in tempi:
        measured = tempo_of(click_track(bpm, args.clip_seconds, MIR_RATE), MIR_RATE).bpm or 0
        right += any(abs(measured / (bpm * f) - 1) <= 0.02 for f in (1, 2, 0.5))
    print(f"tempo: {right} of {len(tempi)} click tracks within 2 % (or half/double)")
    keys = [(t, m) for t in range(12) for m in (False, True)]
    found = sum(
        key_of(cadence(t, m, args.clip_seconds / 2, MIR_RATE), MIR_RATE).key
        == Key(PITCHES[t], Mode.MINOR if m else Mode.MAJOR)
        for t, m in keys
    )
    print(f"key: {found} of {len(keys)} cadences")


if __name__ == "__main__":
    main()
