"""Build an audiocraft MusicGen checkpoint with random weights, offline and from a seed.

audiocraft's `MusicGen.get_pretrained(folder)` reads `state_dict.bin` and
`compression_state_dict.bin`, each `{"xp.cfg": config, "best_state": weights}`. This writes
both with MusicGen's production text conditioner (T5, `t5-base`, cross-attention) at tiny sizes:
32 kHz, 4 codebooks at 50 Hz, delay pattern. The T5 it needs is written as a hub-cache entry
(`OUT/hf-cache/models--t5-base`, or `--hub-cache DIR`), a tiny random encoder with the real
width (768); run the composer with `HF_HUB_CACHE=` that folder and `HF_HUB_OFFLINE=1`.

`--melody` builds the musicgen-melody variant instead: the chroma conditioner (`chroma_stem`,
melody and text both prepended, as in `facebook/musicgen-melody`), whose demucs stem separator
is loaded the way demucs 4.1 loads `htdemucs` (`adefossez/HTDemucs` on the hub: a bag yaml and a
safetensors file whose metadata holds the class and its arguments). The builder writes that
entry to the same hub cache: the real HTDemucs architecture (depth 4, nfft 4096, 44.1 kHz
stereo, 4 sources) with 4 channels and one transformer layer, random weights and zero biases
(random biases dominate such a small separator's stems, and the chroma would then be the same
for every melody).

`--preset small-shape` gives the language model and codec musicgen-small's sizes (1024 wide,
24 layers, 16 heads, 2048 codes; random weights) for benchmarks; the T5 stays tiny.

Usage::

    python -m composer.tiny_audiocraft OUT_DIR [--seed 1234] [--melody] [--preset small-shape]
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REVISION = "0" * 40

COMPRESSION_CFG: dict[str, Any] = {
    "compression_model": "encodec",
    "sample_rate": 32000,
    "channels": 1,
    "encodec": {
        "autoencoder": "seanet",
        "quantizer": "rvq",
        "sample_rate": 32000,
        "channels": 1,
        "causal": False,
        "renormalize": False,
    },
    "seanet": {
        "dimension": 16,
        "channels": 1,
        "causal": False,
        "n_filters": 4,
        "n_residual_layers": 1,
        "ratios": [8, 5, 4, 4],
        "activation": "ELU",
        "activation_params": {"alpha": 1.0},
        "norm": "weight_norm",
        "norm_params": {},
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 7,
        "dilation_base": 2,
        "pad_mode": "constant",
        "true_skip": True,
        "compress": 2,
        "lstm": 1,
        "disable_norm_outer_blocks": 0,
        "decoder": {
            "trim_right_ratio": 1.0,
            "final_activation": None,
            "final_activation_params": None,
        },
        "encoder": {},
    },
    "rvq": {
        "n_q": 4,
        "bins": 256,
        "decay": 0.99,
        "kmeans_init": False,
        "kmeans_iters": 50,
        "threshold_ema_dead_code": 2,
        "orthogonal_reg_weight": 0.0,
        "orthogonal_reg_active_codes_only": False,
        "q_dropout": False,
    },
}

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
        "card": 256,
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

HTDEMUCS_SIGNATURE = "955717e8"
HTDEMUCS_KWARGS: dict[str, Any] = {
    "sources": ["drums", "bass", "other", "vocals"],
    "audio_channels": 2,
    "samplerate": 44100,
    "channels": 4,
    "depth": 4,
    "nfft": 4096,
    "t_layers": 1,
    "t_heads": 2,
    "t_hidden_scale": 1.0,
    "dconv_comp": 2,
}


def _hub_snapshot(cache: Path, repo_id: str) -> Path:
    """An empty snapshot folder for `repo_id` in a hub cache, its `main` ref pointing at it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.rmtree(repo, ignore_errors=True)
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return snapshot


def _sort_safetensors_header(path: Path) -> None:
    """Rewrite the JSON header with sorted keys: safetensors writes its metadata in hash-map
    order, which changes from run to run (the builds must be byte-identical)."""
    import json
    import struct

    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.dumps(json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":"))
    encoded = header.encode().ljust(-(-len(header) // 8) * 8, b" ")
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + length :])


def write_htdemucs_cache(cache: Path, seed: int) -> None:
    """A tiny random HTDemucs as demucs 4.1's `htdemucs` hub entry (bag yaml + safetensors)."""
    import json

    import torch
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    snapshot = _hub_snapshot(cache, "adefossez/HTDemucs")
    torch.manual_seed(seed)
    model = HTDemucs(**HTDEMUCS_KWARGS)
    with torch.no_grad():  # random biases swamp the input: the chroma would ignore the melody
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.zero_()
    segment = {"_type": "fraction", "numerator": 39, "denominator": 5}  # 7.8 s, as released
    metadata = {
        "klass": "demucs.htdemucs.HTDemucs",
        "args": "[]",
        "kwargs": json.dumps({**HTDEMUCS_KWARGS, "segment": segment}, sort_keys=True),
    }
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    path = snapshot / f"{HTDEMUCS_SIGNATURE}.safetensors"
    save_file(weights, str(path), metadata=metadata)
    _sort_safetensors_header(path)
    (snapshot / "htdemucs.yaml").write_text(f"models: ['{HTDEMUCS_SIGNATURE}']\n")


def write_t5_cache(cache: Path, vocab: list[tuple[str, float]], spiece: Path, seed: int) -> Path:
    """A tiny random T5 encoder (d_model 768, t5-base's width) as a hub-cache entry."""
    import torch
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    snapshot = _hub_snapshot(cache, "t5-base")
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


def sized(preset: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The compression and language-model configs of a preset."""
    if preset == "tiny":
        return COMPRESSION_CFG, LM_CFG
    if preset != "small-shape":
        raise ValueError(f"unknown preset {preset!r}")
    seanet = {**COMPRESSION_CFG["seanet"], "dimension": 128, "n_filters": 64, "lstm": 2}
    rvq = {**COMPRESSION_CFG["rvq"], "bins": 2048}
    compression = {**COMPRESSION_CFG, "seanet": seanet, "rvq": rvq}
    lm = {**LM_CFG["transformer_lm"], "card": 2048, "dim": 1024, "num_heads": 16}
    lm.update(num_layers=24, hidden_scale=4)
    return compression, {**LM_CFG, "transformer_lm": lm}


def build(
    out: Path,
    seed: int = 1234,
    hub_cache: Path | None = None,
    melody: bool = False,
    preset: str = "tiny",
) -> Path:
    """Write `state_dict.bin` and `compression_state_dict.bin` to `out`, and the tiny T5 (and
    for `melody` the tiny HTDemucs) to `hub_cache` (default `out/hf-cache`)."""
    import os

    import torch

    from composer.tiny_model import train_tokenizer

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # Before transformers is imported (it reads these once): the T5 conditioner loads from here.
    cache = hub_cache or out / "hf-cache"
    os.environ["HF_HUB_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    vocab = train_tokenizer(out)
    write_t5_cache(cache, vocab, out / "spiece.model", seed)
    compression_cfg, base_lm_cfg = sized(preset)
    lm_cfg = {**base_lm_cfg, **MELODY_CONDITIONING} if melody else base_lm_cfg
    if melody:
        write_htdemucs_cache(cache, seed)
    from composer.backends.audiocraft_compat import install

    install()
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    compression = builders.get_compression_model(
        OmegaConf.create({**compression_cfg, "device": "cpu"})
    )
    for layer in compression.quantizer.vq.layers:  # random codebooks, as after training
        layer._codebook.embed.normal_()
        layer._codebook.inited.fill_(1.0)
    torch.save(
        {"xp.cfg": compression_cfg, "best_state": compression.state_dict()},
        out / "compression_state_dict.bin",
    )
    lm = builders.get_lm_model(OmegaConf.create({**lm_cfg, "device": "cpu", "dtype": "float32"}))
    torch.save({"xp.cfg": lm_cfg, "best_state": lm.state_dict()}, out / "state_dict.bin")
    variant = "MusicGen-melody" if melody else "MusicGen"
    logger.info("built a tiny audiocraft %s (random weights) in %s", variant, out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--hub-cache", type=Path, help="where to put the tiny t5-base (and demucs)")
    parser.add_argument("--melody", action="store_true", help="the musicgen-melody variant")
    parser.add_argument("--preset", choices=["tiny", "small-shape"], default="tiny")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build(args.out, args.seed, args.hub_cache, args.melody, args.preset)


if __name__ == "__main__":
    main()
