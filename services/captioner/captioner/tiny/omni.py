"""Build a Qwen2.5-Omni checkpoint (the thinker: text, vision and audio in) with random weights,
offline, so the captioner's audio path runs its real vLLM code on the real architecture.

The folder is laid out as `Qwen/Qwen2.5-Omni-7B` is: a `qwen2_5_omni` config holding the thinker
(and default talker and token2wav configs, audio output off), weights under `thinker.`, the
Omni processor (Whisper features: 128 mel bins at 16 kHz, hop 160, so one audio token per 40 ms
as on the real checkpoint; Qwen2-VL image and video processors) and a tokenizer carrying the
Omni special tokens in their real order, with the Omni chat template's placeholders.

"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from captioner.tiny.vlm import build_tokenizer, vision_processors

logger = logging.getLogger(__name__)

# Qwen2.5-Omni's special tokens, in the real order (ids 0..N-1 here, 151643.. there).
OMNI_SPECIAL_TOKENS = tuple(
    (
        "<|endoftext|> <|im_start|> <|im_end|> <|AUDIO|> <|audio_bos|> <|audio_eos|> <|box_end|> "
        "<|quad_start|> <|quad_end|> <|vision_bos|> <|vision_eos|> <|vision_pad|> <|IMAGE|> "
        "<|VIDEO|>"
    ).split()
)

NAMED_TOKENS = {  # what the Omni processor reads off its tokenizer
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}

# The Qwen2.5-Omni chat template's structure: media placeholders per content part.
OMNI_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

HIDDEN = 128  # head_dim 32 everywhere: vLLM's CPU attention needs >= 32


def build_processor(out: Path) -> None:
    """The real checkpoint's processor settings (pixels as Qwen2.5-VL; Whisper features for
    up to 300 s of 16 kHz audio, 128 mel bins)."""
    from transformers import AutoTokenizer, Qwen2_5OmniProcessor, WhisperFeatureExtractor

    image_processor, video_processor = vision_processors()
    processor = Qwen2_5OmniProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        feature_extractor=WhisperFeatureExtractor(
            feature_size=128,
            sampling_rate=16000,
            hop_length=160,
            chunk_length=300,
            n_fft=400,
            padding_value=0.0,
            return_attention_mask=True,
        ),
        tokenizer=AutoTokenizer.from_pretrained(str(out)),
        chat_template=OMNI_CHAT_TEMPLATE,
    )
    processor.save_pretrained(str(out))


def build_model(out: Path, seed: int) -> None:
    """Random thinker weights, saved as the full checkpoint stores them (`thinker.` keys)."""
    import torch
    from safetensors.torch import save_file
    from transformers import (
        AutoTokenizer,
        GenerationConfig,
        Qwen2_5OmniConfig,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in OMNI_SPECIAL_TOKENS}
    text = {
        "vocab_size": max(2048, len(tokenizer)),
        "hidden_size": HIDDEN,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": [4, 6, 6],
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "tie_word_embeddings": False,
    }
    vision = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 2,
        "out_hidden_size": HIDDEN,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [1],
    }
    audio = {  # the real front end (128 mel bins, 1500 positions, 100-frame windows)
        "num_mel_bins": 128,
        "encoder_layers": 2,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 256,
        "d_model": HIDDEN,
        "max_source_positions": 1500,
        "n_window": 100,
        "output_dim": HIDDEN,
    }
    user = tokenizer("user", add_special_tokens=False)["input_ids"][0]
    thinker = Qwen2_5OmniThinkerConfig(
        audio_config=audio,
        vision_config=vision,
        text_config=text,
        audio_token_index=ids["<|AUDIO|>"],
        image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"],
        user_token_id=user,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
    )
    config = Qwen2_5OmniConfig(thinker_config=thinker.to_dict(), enable_audio_output=False)
    config.architectures = ["Qwen2_5OmniModel"]
    torch.manual_seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(thinker)
    weights = {f"thinker.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(str(out))
    GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    ).save_pretrained(str(out))


def build(out: Path, seed: int = 0) -> Path:
    """Build the whole model folder at ``out`` (replaced if present) and return it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_tokenizer(out, seed, 2048, OMNI_SPECIAL_TOKENS, OMNI_CHAT_TEMPLATE, NAMED_TOKENS)
    build_processor(out)
    build_model(out, seed)
    logger.info("built a tiny Qwen2.5-Omni thinker (random weights) in %s", out)
    return out
