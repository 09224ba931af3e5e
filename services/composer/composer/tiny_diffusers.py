"""Tiny diffusion composers with random weights, built offline with the real audio geometry.

Stable Audio Open (`--kind stable-audio`): `StableAudioPipeline` laid out as
`stabilityai/stable-audio-open-1.0` — 44.1 kHz stereo through an Oobleck VAE of the real
downsampling ratios (2,048 samples a latent frame), a DiT over the real 1,024-frame window
(47.55 s), a T5 encoder and a sentencepiece tokenizer of 128 tokens trained in process — at tiny
widths.

ACE-Step (`--kind ace-step`): `AceStepPipeline` laid out as `ACE-Step/acestep-v15-turbo`'s
diffusers folder — 48 kHz stereo through an Oobleck VAE of the real downsampling ratios (1920
samples per latent frame, 25 latent frames a second), a turbo (guidance-distilled) DiT, a Qwen3
text encoder and its byte-level BPE tokenizer (trained here on a few captions and lyrics, since
the real one cannot be fetched), a condition encoder whose silence latent holds 15,000 frames
(600 s, the longest song) — at tiny widths.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ACE_STEP_SAMPLE_RATE = 48000
ACE_STEP_DOWNSAMPLING = [2, 4, 4, 6, 10]
"""The real VAE's ratios: 1920 samples a latent frame, 25 frames a second."""
ACE_STEP_SILENCE_FRAMES = 15000
"""600 s at 25 frames a second: the real checkpoint's longest song."""
STABLE_AUDIO_SAMPLE_RATE = 44100
STABLE_AUDIO_DOWNSAMPLING = [2, 4, 4, 8, 8]
"""2,048 samples a latent frame, as stable-audio-open-1.0's VAE."""
STABLE_AUDIO_WINDOW_FRAMES = 1024
"""The DiT's window: 1,024 latent frames, 47.55 s, always denoised whole."""
TEXTS = [
    "pop, upbeat, female vocals, synth, 120 bpm",
    "folk ballad, acoustic guitar, warm male voice",
    "[verse]\nsoft notes in the morning light\n[chorus]\nsing it loud tonight",
    "# Languages\nen\n\n# Lyric\n",
    "- bpm: 120\n- timesignature: 4\n- keyscale: C major\n- duration: 30 seconds\n",
    "chanson française, piano, voix douce",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_level_tokenizer() -> Any:
    """Qwen's tokenizer kind (byte-level BPE, `<|endoftext|>` as eos and pad), a small vocab."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXTS * 10, trainer=trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )


def unit_gain(*modules: Any) -> None:
    """At their initial 0.02 scale a tiny DiT's layers pass the noisy latent through almost
    untouched, and the text (lyrics, metadata) changes the audio by ~1e-5; at unit gain (std
    1/sqrt(fan-in), a trained network's scale) the conditioning is heard."""
    import torch

    with torch.no_grad():
        for module in modules:
            for layer in module.modules():
                if isinstance(layer, torch.nn.Linear):
                    layer.weight.normal_(0.0, layer.in_features**-0.5)


def tiny_oobleck(ratios: list[int], latent: int, sample_rate: int) -> Any:
    """A stereo Oobleck VAE with the real checkpoint's ratios and rate, at tiny widths."""
    from diffusers import AutoencoderOobleck

    return AutoencoderOobleck(
        encoder_hidden_size=2 * latent,  # the encoder's mean and scale of each latent
        downsampling_ratios=ratios,
        channel_multiples=[1] * len(ratios),
        decoder_channels=4,
        decoder_input_channels=latent,
        audio_channels=2,
        sampling_rate=sample_rate,
    )


def build_ace_step(out: Path, seed: int = 1234) -> Path:
    import torch
    from diffusers import AceStepPipeline, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder
    from diffusers.pipelines.ace_step.modeling_ace_step import (
        AceStepAudioTokenDetokenizer,
        AceStepAudioTokenizer,
    )
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = byte_level_tokenizer()
    acoustic = 8
    width = {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8}
    torch.manual_seed(seed)
    transformer = AceStepTransformer1DModel(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        in_channels=3 * acoustic,
        audio_acoustic_hidden_dim=acoustic,
        patch_size=2,
        rope_theta=10000.0,
        sliding_window=16,
        is_turbo=True,
        **width,
    )
    text_encoder = Qwen3Model(
        Qwen3Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=4096,
            **width,
        )
    )
    with torch.no_grad():
        # Lyrics reach the DiT as bare token embeddings (the condition encoder contextualises
        # them); at the initial 0.02 scale they would change nothing, as trained ones do.
        text_encoder.embed_tokens.weight.normal_()
    condition_encoder = AceStepConditionEncoder(
        hidden_size=32,
        intermediate_size=64,
        text_hidden_dim=32,
        timbre_hidden_dim=acoustic,
        num_lyric_encoder_hidden_layers=2,
        num_timbre_encoder_hidden_layers=2,
        rope_theta=10000.0,
        sliding_window=16,
        **width,
    )
    assert condition_encoder.silence_latent.shape[1] == ACE_STEP_SILENCE_FRAMES
    vae = tiny_oobleck(ACE_STEP_DOWNSAMPLING, acoustic, ACE_STEP_SAMPLE_RATE)
    unit_gain(transformer, condition_encoder)
    # The 5 Hz semantic tokens a cover is conditioned on (as the real converted checkpoint has)
    pooling = {"hidden_size": 32, "intermediate_size": 64, "audio_acoustic_hidden_dim": acoustic}
    pooling.update(pool_window_size=5, num_attention_pooler_hidden_layers=1, sliding_window=16)
    audio_tokenizer = AceStepAudioTokenizer(fsq_dim=32, **pooling, **width)
    audio_token_detokenizer = AceStepAudioTokenDetokenizer(**pooling, **width)
    pipe = AceStepPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        condition_encoder=condition_encoder,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0),
        audio_tokenizer=audio_tokenizer,
        audio_token_detokenizer=audio_token_detokenizer,
    )
    if out.exists():
        shutil.rmtree(out)
    pipe.save_pretrained(str(out))
    logger.info("built a tiny ACE-Step (random weights) in %s", out)
    return out


def build_stable_audio(out: Path, seed: int = 1234) -> Path:
    import tempfile

    import torch
    from diffusers import (
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    from composer.tiny_model import train_tokenizer

    with tempfile.TemporaryDirectory() as scratch:
        vocab = train_tokenizer(Path(scratch))
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=128)
    latent, conditioning = 4, 8
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(vocab),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="relu",
            dropout_rate=0.0,
        )
    )
    transformer = StableAudioDiTModel(
        sample_size=STABLE_AUDIO_WINDOW_FRAMES,
        in_channels=latent,
        num_layers=2,
        attention_head_dim=4,
        num_attention_heads=4,
        num_key_value_attention_heads=2,
        out_channels=latent,
        cross_attention_dim=conditioning,
        time_proj_dim=8,
        global_states_input_dim=2 * conditioning,
        cross_attention_input_dim=conditioning,
    )
    projection = StableAudioProjectionModel(
        text_encoder_dim=32, conditioning_dim=conditioning, min_value=0, max_value=512
    )
    unit_gain(transformer, projection)
    vae = tiny_oobleck(STABLE_AUDIO_DOWNSAMPLING, latent, STABLE_AUDIO_SAMPLE_RATE)
    scheduler = CosineDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    pipe = StableAudioPipeline(
        vae=vae,
        text_encoder=text_encoder,
        projection_model=projection,
        tokenizer=tokenizer,
        transformer=transformer,
        scheduler=scheduler,
    )
    if out.exists():
        shutil.rmtree(out)
    pipe.save_pretrained(str(out))
    logger.info("built a tiny Stable Audio Open (random weights) in %s", out)
    return out


BUILDERS = {"ace-step": build_ace_step, "stable-audio": build_stable_audio}
