"""The judge's benchmark runs (on short clips) and gets its known answers right."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_judge_benchmark_gets_its_known_answers() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "judge.py"), "--seconds", "10"]
        + ["--clip-seconds", "8"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "gateway")},
    ).stdout
    assert " match, key A minor match)" in out, out
    assert "tempo: 13 of 13" in out and "key: 24 of 24" in out, out
