"""Build an audiocraft MusicGen checkpoint with random weights, offline and from a seed.

audiocraft's `MusicGen.get_pretrained(folder)` reads `state_dict.bin` and
`compression_state_dict.bin`. This writes them as the hub's packages are: the language model's
`{"xp.cfg": DictConfig, "best_state": weights}` (an OmegaConf object in the pickle, which torch's
`weights_only` loading refuses unless allowed), and for the codec only
`{"pretrained": "facebook/encodec_32khz"}`, a transformers EnCodec fetched from the hub. Both
the EnCodec (the real 32 kHz, 4 x 2048-code layout at tiny widths) and the T5 of MusicGen's
production text conditioner (`t5-base`, cross-attention; a tiny random encoder with the real
width, 768) are written as hub-cache entries (`OUT/hf-cache`, or `--hub-cache DIR`); run the
composer with `HF_HUB_CACHE=` that folder and `HF_HUB_OFFLINE=1`.

`--stereo` builds the musicgen-stereo layout: 8 codebooks with delays [0, 0, 1, 1, 2, 2, 3, 3]
and `interleave_stereo_codebooks` (even codebooks left, odd right, over the mono EnCodec).

`--melody` builds the musicgen-melody variant instead: the chroma conditioner (`chroma_stem`,
melody and text both prepended, as in `facebook/musicgen-melody`), whose demucs stem separator
is loaded the way demucs 4.1 loads `htdemucs` (`adefossez/HTDemucs` on the hub: a bag yaml and a
safetensors file whose metadata holds the class and its arguments). The builder writes that
entry to the same hub cache: the real HTDemucs architecture (depth 4, nfft 4096, 44.1 kHz
stereo, 4 sources) with 4 channels and one transformer layer, random weights and zero biases
(random biases dominate such a small separator's stems, and the chroma would then be the same
for every melody).

`--style` builds the MusicGen-Style variant (`facebook/musicgen-style`, conditioner/style2music):
the style conditioner (MERT features of a 1.5-4.5 s excerpt -> a transformer encoder -> a
6-stream residual quantiser, 3 used at inference -> 5 Hz tokens), the excerpt and the text both
prepended. audiocraft loads MERT as `AutoModel.from_pretrained("m-a-p/MERT-v1-95M")`; the builder
writes that entry to the hub cache as MERT's HuBERT shape (24 kHz in, conv strides 5·2^6 = 320
-> 75 frames a second, 768 wide, which audiocraft's projection expects) with one tiny layer,
in transformers' `HubertModel` (MERT's own code lives on the hub; its outputs are HuBERT's). The
quantiser's codebooks are written initialised (random, as after training: an uninitialised one
would fit itself to the first excerpt it hears).

`--preset small-shape` gives the language model and codec musicgen-small's sizes (1024 wide,
24 layers, 16 heads, 2048 codes; random weights) for benchmarks; the T5 stays tiny.

Built by `python -m composer.tiny OUT_DIR --kind audiocraft [--melody | --style | --stereo]
[--preset small-shape]`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from composer.tiny.hub import hub_snapshot, write_htdemucs_cache

logger = logging.getLogger(__name__)

ENCODEC_REPO = "facebook/encodec_32khz"

LM_CFG: dict[str, Any] = {
    "lm_model": "transformer_lm",
    "sample_rate": 32000,
    "channels": 1,
    "dataset": {"segment_duration": 30},
    "codebooks_pattern": {
        "modeling": "delay",
        "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0, "empty_initial": 0},
    },
    "transformer_lm": {
        "n_q": 4,
        "card": 2048,
        "dim": 32,
        "num_heads": 4,
        "num_layers": 2,
        "hidden_scale": 2,
        "memory_efficient": True,
        "norm_first": True,
        "bias_ff": False,
        "bias_attn": False,
        "bias_proj": False,
        "past_context": None,
        "causal": True,
        "custom": False,
        "attention_as_float32": False,
        "layer_scale": None,
        "positional_embedding": "sin",
        "xpos": False,
        "checkpointing": "none",
        "weight_init": "gaussian",
        "depthwise_init": "current",
        "zero_bias_init": True,
        "norm": "layer_norm",
        "activation": "gelu",
        "dropout": 0.0,
    },
    "classifier_free_guidance": {"training_dropout": 0.3, "inference_coef": 3.0},
    "attribute_dropout": {},
    "fuser": {
        "cross_attention_pos_emb": False,
        "cross_attention_pos_emb_scale": 1,
        "sum": [],
        "prepend": [],
        "cross": ["description"],
        "input_interpolate": [],
    },
    "conditioners": {
        "description": {
            "model": "t5",
            "t5": {
                "name": "t5-base",
                "finetune": False,
                "word_dropout": 0.0,
                "normalize_text": False,
            },
        }
    },
}


MELODY_CONDITIONING: dict[str, Any] = {
    "classifier_free_guidance": {"training_dropout": 0.2, "inference_coef": 3.0},
    "attribute_dropout": {"args": {"active_on_eval": False}, "text": {}, "wav": {"self_wav": 0.5}},
    "fuser": {
        "cross_attention_pos_emb": False,
        "cross_attention_pos_emb_scale": 1,
        "sum": [],
        "prepend": ["self_wav", "description"],
        "cross": [],
        "input_interpolate": [],
    },
    "conditioners": {
        "self_wav": {
            "model": "chroma_stem",
            "chroma_stem": {
                "sample_rate": 32000,
                "n_chroma": 12,
                "radix2_exp": 14,
                "argmax": True,
                "match_len_on_eval": False,
                "eval_wavs": None,
                "n_eval_wavs": 100,
                "cache_path": None,
            },
        },
        "description": LM_CFG["conditioners"]["description"],
    },
}
"""What `facebook/musicgen-melody` changes in the LM config (conditioner/chroma2music)."""

STYLE_CONDITIONING: dict[str, Any] = {
    "classifier_free_guidance": {"training_dropout": 0.1, "inference_coef": 3.0},
    "attribute_dropout": {
        "args": {"active_on_eval": False},
        "text": {"description": 0.4},
        "wav": {"self_wav": 0.4},
    },
    "fuser": MELODY_CONDITIONING["fuser"],  # the excerpt's tokens and the text, prepended
    "conditioners": {
        "self_wav": {
            "model": "style",
            "style": {
                "model_name": "mert",
                "transformer_scale": "xsmall",  # the released model: `default` (512 x 8)
                "sample_rate": 32000,
                "encodec_checkpoint": "//pretrained/facebook/encodec_32khz",
                "encodec_n_q": 3,
                "length": 3.0,
                "ds_factor": 15,  # MERT's 75 Hz -> 5 Hz style tokens
                "n_q_out": 6,
                "eval_q": 3,
                "q_dropout": True,
                "bins": 1024,
                "varying_lengths": [1.5, 4.5],
                "batch_norm": True,
                "compute_mask": True,
                "num_codebooks_lm": 4,
                "ds_rate_compression": 640,
                "use_middle_of_segment": False,
                "rvq_threshold_ema_dead_code": 0.1,
            },
        },
        "description": LM_CFG["conditioners"]["description"],
    },
}
"""What `facebook/musicgen-style` changes in the LM config (conditioner/style2music)."""

MERT_REPO = "m-a-p/MERT-v1-95M"
"""Where audiocraft's style conditioner loads its feature extractor from (hard-coded there)."""


def write_mert_cache(cache: Path, seed: int) -> None:
    """A tiny random MERT (HuBERT-shaped, 768 wide, 75 Hz at 24 kHz) as the hub's MERT-v1-95M."""
    import torch
    from transformers import HubertConfig, HubertModel

    snapshot = hub_snapshot(cache, MERT_REPO)
    config = HubertConfig(
        hidden_size=768,  # audiocraft's projection from MERT is Linear(768, dim)
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(16,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),  # 320 samples a frame: 75 Hz at 24 kHz
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=16,
        feat_extract_norm="group",
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )
    torch.manual_seed(seed)
    HubertModel(config).save_pretrained(str(snapshot))


def write_encodec_cache(cache: Path, preset: str, seed: int) -> None:
    """A random transformers EnCodec as the hub's `facebook/encodec_32khz`."""
    import torch
    from transformers import EncodecModel

    from composer.tiny.musicgen import musicgen_config, trained_codebooks

    snapshot = hub_snapshot(cache, ENCODEC_REPO)
    config = musicgen_config(preset, 2).audio_encoder
    torch.manual_seed(seed)
    model = EncodecModel(config)
    trained_codebooks(layer.codebook for layer in model.quantizer.layers)
    model.save_pretrained(str(snapshot))


def write_t5_cache(cache: Path, vocab: list[tuple[str, float]], spiece: Path, seed: int) -> Path:
    """A tiny random T5 encoder (d_model 768, t5-base's width) as a hub-cache entry."""
    import torch
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    snapshot = hub_snapshot(cache, "t5-base")
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(vocab),
        d_model=768,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
    )
    T5EncoderModel(config).save_pretrained(str(snapshot))
    shutil.copy(spiece, snapshot / "spiece.model")
    T5Tokenizer(vocab=vocab, extra_ids=0).save_pretrained(str(snapshot))
    return cache


def lm_config(preset: str, melody: bool, stereo: bool, style: bool = False) -> dict[str, Any]:
    """The language model's config: the preset's sizes, the variant's conditioning and layout."""
    if preset not in ("tiny", "small-shape"):
        raise ValueError(f"unknown preset {preset!r}")
    lm = dict(LM_CFG["transformer_lm"])
    if preset == "small-shape":
        lm.update(dim=1024, num_heads=16, num_layers=24, hidden_scale=4)
    cfg = dict(LM_CFG)
    if melody or style:
        cfg.update(MELODY_CONDITIONING if melody else STYLE_CONDITIONING)
    if stereo:
        lm["n_q"] = 8
        cfg["channels"] = 2
        cfg["codebooks_pattern"] = {
            "modeling": "delay",
            "delay": {"delays": [0, 0, 1, 1, 2, 2, 3, 3], "flatten_first": 0, "empty_initial": 0},
        }
        cfg["interleave_stereo_codebooks"] = {"use": True, "per_timestep": False}
    return {**cfg, "transformer_lm": lm}


def build(
    out: Path,
    seed: int = 1234,
    hub_cache: Path | None = None,
    melody: bool = False,
    preset: str = "tiny",
    stereo: bool = False,
    style: bool = False,
) -> Path:
    """Write `state_dict.bin` and `compression_state_dict.bin` to `out`, and the tiny T5 (for
    `melody` the tiny HTDemucs, for `style` the tiny MERT) to `hub_cache` (default
    `out/hf-cache`)."""
    if melody and style:
        raise ValueError("one conditioning variant: melody or style")
    import os

    import torch

    from composer.tiny.musicgen import trained_codebooks
    from composer.tiny.tokenizer import train_tokenizer

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # Before transformers is imported (it reads these once): the T5 conditioner loads from here.
    cache = hub_cache or out / "hf-cache"
    os.environ["HF_HUB_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    vocab = train_tokenizer(out)
    write_t5_cache(cache, vocab, out / "spiece.model", seed)
    write_encodec_cache(cache, preset, seed)
    lm_cfg = lm_config(preset, melody, stereo, style)
    if melody:
        write_htdemucs_cache(cache, seed)
    if style:
        write_mert_cache(cache, seed)
    from composer.backends.audiocraft_compat import install

    install()
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    torch.save({"pretrained": ENCODEC_REPO}, out / "compression_state_dict.bin")
    torch.manual_seed(seed)
    lm = builders.get_lm_model(OmegaConf.create({**lm_cfg, "device": "cpu", "dtype": "float32"}))
    if style:  # the style quantiser's, as after training
        rvq = lm.condition_provider.conditioners["self_wav"].rvq
        trained_codebooks(layer._codebook for layer in rvq.vq.layers)
    package = {"xp.cfg": OmegaConf.create(lm_cfg), "best_state": lm.state_dict()}
    torch.save(package, out / "state_dict.bin")
    variant = (
        "MusicGen-melody"
        if melody
        else "MusicGen-Style"
        if style
        else "MusicGen-stereo"
        if stereo
        else "MusicGen"
    )
    logger.info("built a tiny audiocraft %s (random weights) in %s", variant, out)
    return out
