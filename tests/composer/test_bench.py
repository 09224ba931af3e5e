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
            "--peer",
            "--parts",
            "policies,burst,cancel",
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
        "audiocraft MusicGen.generate per request",
    ):
        assert line in out, out


def test_the_diffusion_benchmark_prints_its_ratios() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "diffusion.py")]
        + ["--seconds", "1", "--steps", "1", "--longest", "2", "--models", "ace-step"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert "ace-step (tiny):" in out and "s per audio s" in out and "4 sequential" in out, out


def test_the_gpu_check_runs_on_the_cpu_at_the_tiny_shape(tmp_path: Path) -> None:
    """bench/gpu/run.py is meant for a GPU machine; here it must run end to end all the same."""
    import json

    figures = tmp_path / "gpu.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gpu" / "run.py"),
            "--device",
            "cpu",
            "--shape",
            "tiny",
            "--batches",
            "1",
            "2",
            "--steps",
            "5",
            "--long-seconds",
            "3",
            "--window-s",
            "2",
            "--stride-s",
            "1",
            "--out",
            str(figures),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    mono, stereo = json.loads(figures.read_text())
    for result, channels in ((mono, 1), (stereo, 2)):
        assert result["alone_equals_joined"] is True  # exact on the CPU
        assert result["long"] == {
            "seconds": 3.0,
            "channels": channels,
            "exact_length": True,
            "finite": True,
        }
        assert [b["batch"] for b in result["batches"]] == [1, 2]
