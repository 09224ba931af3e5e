"""The cut-detection benchmark runs (on a short, small clip) and prints its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_scene_cut_benchmark_finds_every_cut_of_its_clip() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scene_cuts.py"), "--seconds", "12"]
        + ["--width", "320", "--height", "180", "--runs", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert out.count("hard cuts recall 1.00, precision 1.00") == 2, out
    assert "s per minute of video" in out
