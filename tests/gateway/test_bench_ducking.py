"""The ducking benchmark runs on synthesised speech and prints figures within its targets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_ducking_benchmark_meets_its_targets() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ducking.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    under = float(re.search(r"elsewhere: ([-+0-9.]+) dB", out).group(1))  # type: ignore[union-attr]
    assert under <= -10, out
    speech = [float(v) for v in re.findall(r"original ([-+0-9.]+) dB", out)]
    assert len(speech) == 3 and all(abs(v) <= 1 for v in speech), out
