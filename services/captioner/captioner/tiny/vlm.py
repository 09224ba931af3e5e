"""Build a Qwen2.5-VL checkpoint with random weights, offline and byte-identically from a seed.

Tests and CI cannot reach a model hub, so the captioner runs its real vLLM code path on a model
of the real architecture that this script builds in seconds: a locally trained byte-level BPE
tokenizer carrying Qwen's special tokens (same ids order), the official Qwen2-VL chat template,
image and video processor configs, and random weights. ``--shape 3b`` / ``--shape 7b`` emit the
full-size architectures (random bf16 weights) for benchmarks: same compute, no download.

"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Qwen2-VL / Qwen2.5-VL special tokens, in the real order (they get ids 0..N-1 here).
SPECIAL_TOKENS = tuple(
    (
        "<|endoftext|> <|im_start|> <|im_end|> <|object_ref_start|> <|object_ref_end|> "
        "<|box_start|> <|box_end|> <|quad_start|> <|quad_end|> <|vision_start|> <|vision_end|> "
        "<|vision_pad|> <|image_pad|> <|video_pad|>"
    ).split()
)

# The official Qwen2-VL chat template (the one Qwen2.5-VL ships too).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenizer split pattern.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

MUSIC_WORDS = (
    "ambient lofi jazz piano synth strings drums bass guitar cello violin orchestral cinematic "
    "upbeat calm dreamy dark bright warm mellow energetic tempo bpm major minor key genre mood "
    "instruments description electronic acoustic folk rock pop house techno chill epic soft"
).split()


@dataclass(frozen=True)
class Shape:
    """Sizes of one Qwen2.5-VL variant."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    mrope: tuple[int, int, int]
    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_heads: int
    fullatt_blocks: tuple[int, ...]
    tie_embeddings: bool
    max_positions: int


SHAPES = {
    # head_dim 32 (vLLM's CPU attention needs >= 32); mrope sections sum to head_dim / 2.
    "tiny": Shape(128, 256, 2, 4, 2, 2048, (4, 6, 6), 2, 64, 128, 2, (1,), False, 4096),
    "3b": Shape(
        2048,
        11008,
        36,
        16,
        2,
        151936,
        (16, 24, 24),
        32,
        1280,
        3420,
        16,
        (7, 15, 23, 31),
        True,
        128000,
    ),
    "7b": Shape(
        3584,
        18944,
        28,
        28,
        4,
        152064,
        (16, 24, 24),
        32,
        1280,
        3420,
        16,
        (7, 15, 23, 31),
        False,
        128000,
    ),
}


def _corpus(seed: int, lines: int = 6000) -> list[str]:
    """A seeded synthetic corpus: music words, JSON punctuation and syllable pseudo-words."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
    out = []
    for _ in range(lines):
        words = [
            rng.choice(MUSIC_WORDS) if rng.random() < 0.6 else "".join(rng.choices(syllables, k=2))
            for _ in range(rng.randint(4, 14))
        ]
        line = " ".join(words)
        if rng.random() < 0.3:
            line = json.dumps({"genre": words[0], "tempo_bpm": rng.randint(40, 200), "text": line})
        out.append(line)
    return out


def build_tokenizer(
    out: Path,
    seed: int,
    vocab_size: int,
    special_tokens: tuple[str, ...] = SPECIAL_TOKENS,
    chat_template: str = CHAT_TEMPLATE,
    named_tokens: dict[str, str] | None = None,
) -> None:
    """Train a byte-level BPE with Qwen2's normaliser, pre-tokeniser and decoder; save as HF.
    `named_tokens` become tokenizer attributes (`image_token` ...), as processors expect."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AutoTokenizer, Qwen2Tokenizer

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    wrapped = Qwen2Tokenizer(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=list(special_tokens[3:]),
        model_specific_special_tokens=named_tokens or {},
    )
    wrapped.chat_template = chat_template
    with tempfile.TemporaryDirectory() as tmp:
        wrapped.save_pretrained(tmp)
        # Load back and re-save so the files are in the installed transformers' own format.
        AutoTokenizer.from_pretrained(tmp).save_pretrained(str(out))


def build_model(out: Path, shape: Shape, seed: int) -> None:
    """Random weights of the Qwen2.5-VL architecture, saved as safetensors."""
    import torch
    from transformers import (
        AutoTokenizer,
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = shape.hidden // shape.heads
    text = {
        "vocab_size": max(shape.vocab, len(tokenizer)),
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": shape.max_positions,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": list(shape.mrope),
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "tie_word_embeddings": shape.tie_embeddings,
    }
    vision = {
        "depth": shape.vision_depth,
        "hidden_size": shape.vision_hidden,
        "intermediate_size": shape.vision_intermediate,
        "num_heads": shape.vision_heads,
        "out_hidden_size": shape.hidden,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": list(shape.fullatt_blocks),
        "tokens_per_second": 2,
    }
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=shape.tie_embeddings,
    )
    torch.manual_seed(seed)
    # Full-size shapes are built directly in bf16: 3B parameters in fp32 and a bf16 copy would
    # not fit beside each other in 24 GB.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32 if shape is SHAPES["tiny"] else torch.bfloat16)
    try:
        model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default_dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    model.save_pretrained(str(out))


def vision_processors() -> tuple[Any, Any]:
    """Image and video processors with Qwen2.5-VL's own settings (patch 14, merge 2, frames in
    pairs, 3,136 to 12,845,056 pixels; Qwen2.5-Omni's are the same), so token counts are the
    real checkpoint's; the service's `CAPTIONER_MAX_PIXELS` / `CAPTIONER_MAX_FRAME_PIXELS` keep
    the inputs small in tests."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    pixels = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 16384}
    return (
        Qwen2VLImageProcessor(**pixels),
        Qwen2VLVideoProcessor(**pixels, min_frames=2, max_frames=64, fps=2.0),
    )


def build_processor(out: Path) -> None:
    """The processor: `vision_processors`, the tokenizer and the chat template."""
    from transformers import AutoTokenizer, Qwen2_5_VLProcessor

    image_processor, video_processor = vision_processors()
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        tokenizer=AutoTokenizer.from_pretrained(str(out)),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(str(out))


def build(out: Path, shape_name: str = "tiny", seed: int = 0) -> Path:
    """Build the whole model folder at ``out`` (replaced if present) and return it."""
    shape = SHAPES[shape_name]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_tokenizer(out, seed, vocab_size=2048)
    build_processor(out)
    build_model(out, shape, seed)
    logger.info("built %s Qwen2.5-VL (random weights) in %s", shape_name, out)
    return out
