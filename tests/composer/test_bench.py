"""The engine benchmark runs (on a small workload of the tiny model) and prints its ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
        + ["--seconds", "1", "--steps", "1", "--longest", "2", "--models", "ace-step"]
        + ["--lanes", "30", "1"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert "ace-step (tiny):" in out and "s per audio s" in out and "4 sequential" in out, out
    assert "on two lanes" in out and "sooner" in out, out


GPU_CHECK = [sys.executable, str(ROOT / "bench" / "gpu" / "run.py"), "--device", "cpu"]
TINY = ["--shape", "tiny", "--steps", "5", "--window-s", "2", "--stride-s", "1"]
PART_ARGS = {
    "musicgen": ["--batches", "1", "2", "--long-seconds", "3"],
    "graphs": ["--graph-batches", "1", "2", "--ratio-layers", "1", "--ratio-slots", "8"],
    "diffusion": ["--diffusion-seconds", "2"],
}
EVERY_PART = {
    "device",
    "dtype",
    "batches",
    "streams_at_50_steps_per_s",
    "graphs_captured",
    "host_syncs_per_step",
    "aten_ops_per_step",
    "peak_memory_bytes",
    "failures",
}


def gpu_check(part: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [*GPU_CHECK, "--part", part, *TINY, *PART_ARGS[part], *extra, "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("part", sorted(PART_ARGS))
def test_every_part_of_the_gpu_check_runs_on_the_cpu_at_the_tiny_shape(
    part: str, tmp_path: Path
) -> None:
    """bench/gpu/run.py is meant for a GPU machine; here each part runs end to end, passes
    its checks and writes the figures the device run must bring back."""
    out = tmp_path / f"{part}.json"
    done = gpu_check(part, out)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert EVERY_PART <= set(figures) and figures["failures"] == []
    assert figures["device"] == "cpu" and figures["dtype"] == "float32"
    if part == "musicgen":
        mono, stereo = figures["models"]
        for result, channels in ((mono, 1), (stereo, 2)):
            assert result["generate_equal_frames"] == 10
            assert result["joined_equal_fraction"] == 1.0  # exact on the CPU
            assert result["long"] == {
                "seconds": 3.0,
                "channels": channels,
                "exact_length": True,
                "finite": True,
            }
        assert [b["batch"] for b in figures["batches"]] == [1, 2]
        assert figures["host_syncs_per_step"] == {"1": 0.0, "2": 0.0}
        assert figures["aten_ops_per_step"]["2"] > figures["aten_ops_per_step"]["1"] > 0
    if part == "graphs":
        assert figures["compiled_over_eager_step"] > 0
        assert figures["graphs_captured"] is False  # no CUDA here
    if part == "diffusion":
        names = [m["model"].split(",")[0] for m in figures["models"]]
        assert names == ["ace-step", "stable-audio", "stable-audio-3"]


def test_a_failed_check_fails_the_gpu_check_and_is_kept(tmp_path: Path) -> None:
    """More frames asked to agree than the check compares (one second, 50): it must fail,
    say so, keep the failure in its figures and exit 1."""
    out = tmp_path / "musicgen.json"
    done = gpu_check("musicgen", out, "--agree-frames", "60")
    assert done.returncode == 1
    assert "check FAILED" in done.stdout
    failures = json.loads(out.read_text())["failures"]
    assert failures and "greedy engine == generate" in failures[0]


def test_section_boundaries_benchmark_lands_within_a_codec_frame() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "section_boundaries.py"), "--plans", "2"]
        + ["--seconds", "5"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("max boundary error"))
    frames = float(line.split("=")[1].split("codec")[0])
    assert 0 <= frames <= 1.0, out
