"""The tiny model builder: byte-identical from a seed, and shaped as vLLM's CPU backend needs."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from captioner.tiny.vlm import SPECIAL_TOKENS


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_tiny_models_rebuilds_byte_identically(tiny_vlm: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    subprocess.run(
        ["make", "-s", "tiny-models", f"TINY_DIR={again}", f"TINY_MUSICGEN_DIR={tmp_path / 'mg'}"],
        cwd=REPO,
        check=True,
    )
    assert digest(again) == digest(tiny_vlm)
    assert {"model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"} <= set(
        digest(again)
    )


def test_config_fits_vllm_cpu(tiny_vlm: Path) -> None:
    config = json.loads((tiny_vlm / "config.json").read_text())
    text = config.get("text_config", config)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    assert head_dim >= 32
    assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]


def test_tokenizer_has_qwen_special_tokens_in_order(tiny_vlm: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_vlm))
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(
        range(len(SPECIAL_TOKENS))
    )
    assert tokenizer.eos_token == "<|im_end|>"
    ids = tokenizer("a calm lake, 80 BPM")["input_ids"]
    assert tokenizer.decode(ids) == "a calm lake, 80 BPM"
