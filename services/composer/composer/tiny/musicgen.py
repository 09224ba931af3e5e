"""Build MusicGen checkpoints with random weights, offline and byte-identically from a seed.

Tests and CI cannot download MusicGen, so the composer runs its real loading and generation code
on models of the real architecture built here: 32 kHz, 4 codebooks at 50 Hz like musicgen-small,
a T5 text encoder with a sentencepiece tokenizer trained in process. `--preset small-shape`
writes the real musicgen-small sizes (random weights) for benchmarks.

`--stereo` writes the musicgen-stereo layout: 8 codebooks (even ones the left channel, odd ones
the right, each pair sharing a delay) over the same mono 4-codebook EnCodec. `--melody` writes
musicgen-melody's (`MusicgenMelodyForConditionalGeneration`: 12 chroma bins read as a prefix of
235 frames, the checkpoint's chroma extractor settings) and, into `--hub-cache`, the tiny demucs
its melodies are separated with.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.tiny.tokenizer import train_tokenizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    t5_d_model: int
    t5_layers: int
    t5_heads: int
    t5_d_ff: int
    t5_d_kv: int
    encodec_filters: int
    encodec_hidden: int
    encodec_lstm: int
    codebook_size: int
    decoder_hidden: int
    decoder_layers: int
    decoder_heads: int
    decoder_ffn: int


PRESETS = {
    "tiny": Preset(32, 2, 4, 64, 8, 4, 16, 1, 2048, 32, 2, 4, 64),
    "small-shape": Preset(768, 12, 12, 3072, 64, 64, 128, 2, 2048, 1024, 24, 16, 4096),
    "medium-shape": Preset(768, 12, 12, 3072, 64, 64, 128, 2, 2048, 1536, 48, 24, 6144),
}


MELODY_EXTRACTOR = {
    "feature_extractor_type": "MusicgenMelodyFeatureExtractor",
    "processor_class": "MusicgenMelodyProcessor",
    "feature_size": 12,
    "sampling_rate": 32000,
    "hop_length": 4096,
    "chunk_length": 30,
    "n_fft": 16384,
    "num_chroma": 12,
    "padding_side": "right",
    "padding_value": 0.0,
    "return_attention_mask": False,
    "stem_indices": [3, 2],
}
"""facebook/musicgen-melody's `preprocessor_config.json` (its extractor needs torchaudio to be
built, so the file is written as the hub has it)."""


def musicgen_config(
    preset_name: str, vocab_size: int, stereo: bool = False, melody: bool = False
) -> Any:
    """The `MusicgenConfig` (or `MusicgenMelodyConfig`) of a preset: musicgen-small's,
    musicgen-stereo's or musicgen-melody's audio layout, the preset's sizes."""
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        T5Config,
    )

    p = PRESETS[preset_name]
    text = T5Config(
        vocab_size=vocab_size,
        d_model=p.t5_d_model,
        d_kv=p.t5_d_kv,
        d_ff=p.t5_d_ff,
        num_layers=p.t5_layers,
        num_heads=p.t5_heads,
        relative_attention_num_buckets=8 if preset_name == "tiny" else 32,
        feed_forward_proj="relu",
        dropout_rate=0.0,
    )
    audio = EncodecConfig(
        sampling_rate=32000,
        audio_channels=1,
        target_bandwidths=[2.2],
        upsampling_ratios=[8, 5, 4, 4],
        num_filters=p.encodec_filters,
        hidden_size=p.encodec_hidden,
        codebook_size=p.codebook_size,
        num_lstm_layers=p.encodec_lstm,
        num_residual_layers=1,
        use_causal_conv=False,
        norm_type="weight_norm",
        pad_mode="reflect",
        normalize=False,
        chunk_length_s=None,
    )
    decoder_kind = MusicgenMelodyDecoderConfig if melody else MusicgenDecoderConfig
    decoder = decoder_kind(
        vocab_size=p.codebook_size,
        num_codebooks=8 if stereo else 4,
        audio_channels=2 if stereo else 1,
        hidden_size=p.decoder_hidden,
        ffn_dim=p.decoder_ffn,
        num_hidden_layers=p.decoder_layers,
        num_attention_heads=p.decoder_heads,
        pad_token_id=p.codebook_size,
        bos_token_id=p.codebook_size,
        decoder_start_token_id=p.codebook_size,
    )
    if melody:
        config = MusicgenMelodyConfig(
            text_encoder=text,
            audio_encoder=audio,
            decoder=decoder,
            num_chroma=12,
            chroma_length=235,
        )
    else:
        config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    config.decoder_start_token_id = config.pad_token_id = p.codebook_size
    return config


def trained_codebooks(codebooks: Any) -> None:
    """Vector-quantiser codebooks as after training: random entries, marked filled. Untrained
    ones are zeros (EnCodec: every code would decode to silence) or wait to k-means-fit the
    first input they see (audiocraft's residual quantiser)."""
    import torch

    with torch.no_grad():
        for codebook in codebooks:
            codebook.embed.normal_()
            codebook.embed_avg.copy_(codebook.embed)
            codebook.cluster_size.fill_(1.0)
            codebook.inited.fill_(1.0)


def random_model(config: Any, seed: int) -> Any:
    """A `MusicgenForConditionalGeneration` (or its melody kind) with random weights (on torch's
    default device)."""
    import torch
    from transformers import (
        GenerationConfig,
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    torch.manual_seed(seed)
    if config.model_type == "musicgen_melody":
        model = MusicgenMelodyForConditionalGeneration(config)
    else:
        model = MusicgenForConditionalGeneration(config)
    # EnCodec's codebooks start at zero (training fills them by k-means): random ones make every
    # code decode to a different sound, as in a trained model.
    trained_codebooks(layer.codebook for layer in model.audio_encoder.quantizer.layers)
    with torch.no_grad():
        if config.model_type == "musicgen_melody":
            # At its initial 0.02 scale the chroma projection is lost beside the sinusoidal
            # positions and the melody would change nothing; a trained one is not.
            model.audio_enc_to_dec_proj.weight.normal_()
    pad = int(config.decoder.pad_token_id)
    model.generation_config = GenerationConfig(
        do_sample=True,
        top_k=250,
        guidance_scale=3.0,
        max_length=1500,
        decoder_start_token_id=pad,
        pad_token_id=pad,
        bos_token_id=pad,
    )
    return model


def build(
    out: Path,
    preset_name: str = "tiny",
    seed: int = 1234,
    stereo: bool = False,
    melody: bool = False,
    hub_cache: Path | None = None,
) -> Path:
    """Write a transformers MusicGen folder (the hub's musicgen-small, musicgen-stereo-small or
    musicgen-melody layout) to `out`; a melody build also writes the tiny demucs to
    `hub_cache` (default: the `HF_HUB_CACHE` in use)."""
    from transformers import EncodecFeatureExtractor, MusicgenProcessor, T5Tokenizer

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    vocab = train_tokenizer(out)
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    model = random_model(musicgen_config(preset_name, len(vocab), stereo, melody), seed)
    model.save_pretrained(str(out))
    if melody:
        return _finish_melody(out, tokenizer, seed, hub_cache)
    extractor = EncodecFeatureExtractor(
        feature_size=1,
        sampling_rate=32000,
        padding_side="left",
        padding_value=0.0,
        return_attention_mask=True,
    )
    MusicgenProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(out))
    extractor.save_pretrained(str(out))
    # transformers 5 nests the extractor in processor_config.json, which 4.x cannot read; the
    # hub's musicgen folders have no such file, and without it both versions load the folder.
    (out / "processor_config.json").unlink(missing_ok=True)
    logger.info("built %s%s MusicGen (random weights) in %s", preset_name, " stereo" * stereo, out)
    return out


def _finish_melody(out: Path, tokenizer: Any, seed: int, hub_cache: Path | None) -> Path:
    """The melody checkpoint's tokenizer and extractor settings, and demucs in the hub cache."""
    from huggingface_hub.constants import HF_HUB_CACHE

    from composer.tiny.hub import write_htdemucs_cache

    tokenizer.save_pretrained(str(out))
    (out / "preprocessor_config.json").write_text(json.dumps(MELODY_EXTRACTOR, indent=2) + "\n")
    write_htdemucs_cache(hub_cache or Path(HF_HUB_CACHE), seed)
    logger.info("built a tiny MusicGen-melody (random weights) in %s", out)
    return out
