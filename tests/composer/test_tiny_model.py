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
    subprocess.run([sys.executable, "-m", "composer.tiny", str(again)], check=True)
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


def test_the_codec_has_exactly_the_decoders_codebooks(tiny_musicgen: Path) -> None:
    """musicgen-small's EnCodec runs 4 quantizers at its bandwidth, as many as the decoder's
    codebooks (a 256-code tiny codec used to run 5 at the same bandwidth)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_musicgen)
    assert config.audio_encoder.num_quantizers == config.decoder.num_codebooks == 4
    assert config.audio_encoder.codebook_size == 2048


def test_stereo_layout_matches_musicgen_stereo(tiny_stereo_musicgen: Path) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_stereo_musicgen)
    assert config.decoder.audio_channels == 2
    assert config.decoder.num_codebooks == 8
    assert config.audio_encoder.audio_channels == 1  # one mono codec for each side
    assert config.audio_encoder.num_quantizers == 4
