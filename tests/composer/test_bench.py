"""The engine benchmark runs (on a small workload of the tiny model) and prints its ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_benchmark_prints_its_ratios() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "engine_staggered.py"),
            "--requests",
            "3",
            "--seconds",
            "0.5",
            "--gap",
            "0.05",
            "--slots",
            "2",
            "--cancel-rows",
            "2",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    for line in (
        "continuous:",
        "static:",
        "one at a time:",
        "throughput continuous / static",
        "p95 first audio / solo",
        "cancel: step",
    ):
        assert line in out, out
