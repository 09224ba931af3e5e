"""make demo / make up on a machine with NVIDIA GPUs say at start that they leave them unused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKE_SMI = """#!/bin/sh
echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"
echo "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-1)"
"""


def notice(path: str) -> str:
    code = "import sys; sys.path.insert(0, 'scripts'); import stack; print(stack.gpu_notice())"
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout


def test_gpus_found_are_named_with_the_way_to_use_them(tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"  # stands in for the driver's tool: no GPU here
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    said = notice(f"{tmp_path}:{os.environ['PATH']}")
    assert "2 NVIDIA GPU(s) found" in said and "docker compose up" in said


def test_no_gpu_no_notice(tmp_path: Path) -> None:
    assert notice(str(tmp_path)).strip() == "None"
