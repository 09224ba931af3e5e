"""The tiny MusicGen builder: byte-identical from a seed, with the real model's audio layout."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_builds_are_byte_identical(tiny_musicgen: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "composer.tiny_model", str(again)], check=True)
    assert digest(again) == digest(tiny_musicgen)


def test_layout_matches_musicgen_small(tiny_musicgen: Path) -> None:
    config = json.loads((tiny_musicgen / "config.json").read_text())
    audio = config["audio_encoder"]
    assert audio["sampling_rate"] == 32000
    hop = 1
    for ratio in audio["upsampling_ratios"]:
        hop *= ratio
    assert audio["sampling_rate"] / hop == 50  # 50 frames per second
    assert config["decoder"]["num_codebooks"] == 4
    assert not (tiny_musicgen / "processor_config.json").exists()
