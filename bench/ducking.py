"""Speech kept over ducked music: the gateway's mix (`gateway.mix`) on a soundtrack of speech
synthesised by espeak-ng in known spans, with music-like noise (a chord and a noise bed).

Prints the music's level under the speech against its level elsewhere (the target: at least
10 dB lower with the default depth, -12 dB) and the speech's level in the mix against the
original (the target: within 1 dB), each span measured inside its edges.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import GatewaySettings  # noqa: E402
from gateway.mix import RELEASE_S, mixed  # noqa: E402
from gateway.protocol import KeepOriginal  # noqa: E402
from tests.media_factory import soundtrack_with_speech  # noqa: E402

RATE = 32000
LINES = [
    (1.0, "The kitchen was quiet this morning."),
    (6.5, "Then the car came round the corner, fast."),
    (13.0, "And we watched the sun go down over the water."),
]


def level_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64))) + 1e-12))


def main() -> None:
    seconds = 20.0
    voice, spans = soundtrack_with_speech(seconds, LINES, RATE)
    t = np.arange(voice.size) / RATE
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (196.0, 246.9, 293.7))
    bed = np.random.default_rng(1).normal(0, 0.03, t.size)
    music = np.stack([chord + bed, chord - bed]).astype(np.float32)
    original = np.stack([voice, voice])
    depth = GatewaySettings().duck_depth_db
    out = mixed(original, music, RATE, KeepOriginal.SPEECH, spans, depth)
    added = out - original  # the music as it went into the mix
    spoken = np.zeros(t.size, dtype=bool)
    away = np.ones(t.size, dtype=bool)
    for start, end in spans:
        spoken |= (t >= start + 0.1) & (t < end - 0.1)
        away &= ~((t >= start - 0.5) & (t < end + RELEASE_S + 0.5))
    under = level_db(added[:, spoken]) - level_db(added[:, away])
    print(f"depth setting {depth:g} dB; {len(spans)} spoken spans in {seconds:g} s")
    print(f"music under speech vs elsewhere: {under:+.1f} dB (target <= -10)")
    for (start, end), _ in zip(spans, LINES, strict=True):
        inner = (t >= start + 0.1) & (t < end - 0.1)
        diff = level_db(out[:, inner]) - level_db(original[:, inner])
        print(f"speech {start:5.2f}-{end:5.2f} s: mix vs original {diff:+.2f} dB (target within 1)")


if __name__ == "__main__":
    main()
