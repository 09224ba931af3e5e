"""Tiny diffusion composers with random weights, built offline with the real audio geometry.

AudioLDM 2 (`--kind audioldm2`): `AudioLDM2Pipeline` laid out as `cvssp/audioldm2-music` — 16 kHz
mono through a HiFi-GAN vocoder of the real upsampling (160 samples a mel frame, 64 mel bins),
a VAE that downsamples by 8 and a UNet over the real 128-frame latent (10.24 s), CLAP and T5
text encoders with byte-level BPE and sentencepiece tokenizers built in process, and the
`GPT2LMHeadModel` language model the pipeline needs (a `GPT2Model` fails in diffusers 0.42.1) —
at tiny widths.

Stable Audio 3 (`--kind stable-audio-3`): `StableAudio3Pipeline` with the medium checkpoint's
audio geometry — 44.1 kHz stereo through a SAME autoencoder of patch 256 and stride 16 (4,096
samples a latent frame), a DiT with duration conditioning up to 384 s, a T5Gemma encoder and a
byte-fallback Gemma tokenizer built in process, the distilled ping-pong scheduler — at tiny
widths.

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
AUDIOLDM2_SAMPLE_RATE = 16000
AUDIOLDM2_LATENT_FRAMES = 128
"""The UNet's trained latent length: 128 frames x 8 (VAE) x 160 samples = 10.24 s."""
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


def saved(pipe: Any, out: Path, name: str) -> Path:
    """Write `pipe` as a diffusers folder at `out` (replacing what was there)."""
    if out.exists():
        shutil.rmtree(out)
    pipe.save_pretrained(str(out))
    logger.info("built a tiny %s (random weights) in %s", name, out)
    return out


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
    return saved(pipe, out, "ACE-Step")


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

    from composer.tiny.tokenizer import train_tokenizer

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
    return saved(pipe, out, "Stable Audio Open")


def byte_level_roberta() -> Any:
    """CLAP's tokenizer kind (RoBERTa's byte-level BPE): the byte alphabet and its specials."""
    from tokenizers import pre_tokenizers
    from transformers import RobertaTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(specials + alphabet)}
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_audioldm2(out: Path, seed: int = 1234) -> Path:
    import tempfile

    import torch
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        AutoencoderKL,
        DDIMScheduler,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        T5Config,
        T5EncoderModel,
        T5Tokenizer,
    )

    from composer.tiny.tokenizer import train_tokenizer

    clap_tokenizer = byte_level_roberta()
    with tempfile.TemporaryDirectory() as scratch:
        vocab = train_tokenizer(Path(scratch))
    t5_tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=77)
    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=AUDIOLDM2_LATENT_FRAMES,
        in_channels=8,
        out_channels=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=([None, 16, 32], [None, 16, 32]),
        norm_num_groups=4,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(  # four blocks: downsampling by 8, as the real VAE
        block_out_channels=[4, 4, 4, 4],
        in_channels=1,
        out_channels=1,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=8,
        norm_num_groups=2,
        layers_per_block=1,
    )
    text = ClapTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        hidden_size=16,
        intermediate_size=37,
        num_attention_heads=2,
        num_hidden_layers=2,
        vocab_size=len(clap_tokenizer),
        projection_dim=16,
        max_position_embeddings=80,
    )
    audio = ClapAudioConfig(
        spec_size=64,
        window_size=4,
        num_mel_bins=64,
        intermediate_size=37,
        depths=[2, 2],
        num_attention_heads=[2, 2],
        num_hidden_layers=2,
        hidden_size=192,
        projection_dim=16,
        patch_size=2,
        patch_stride=2,
        patch_embed_input_channels=4,
    )
    clap = ClapModel(
        ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)
    )
    t5 = T5EncoderModel(
        T5Config(vocab_size=len(vocab), d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=2)
    )
    language_model = GPT2LMHeadModel(
        GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=1000, n_ctx=99, n_positions=99)
    )
    language_model.config.max_new_tokens = 8
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=64,
            sampling_rate=AUDIOLDM2_SAMPLE_RATE,
            upsample_initial_channel=64,
            upsample_rates=[5, 4, 2, 2, 2],
            upsample_kernel_sizes=[16, 16, 8, 4, 4],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3, 5]],
            normalize_before=False,
        )
    )
    with torch.no_grad():
        # HiFi-GAN's five upsampling stages at their initial scale leave ~1e-9 of the signal:
        # at unit gain a mel spectrogram comes out as audio at a level a trained one gives.
        for layer in vocoder.modules():
            if isinstance(layer, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                layer.weight.normal_(0.0, layer.weight[0].numel() ** -0.5)
    unit_gain(unet)
    pipe = AudioLDM2Pipeline(
        vae=vae,
        text_encoder=clap,
        text_encoder_2=t5,
        projection_model=AudioLDM2ProjectionModel(
            text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16
        ),
        language_model=language_model,
        tokenizer=clap_tokenizer,
        tokenizer_2=t5_tokenizer,
        feature_extractor=ClapFeatureExtractor(),
        unet=unet,
        scheduler=DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
        ),
        vocoder=vocoder,
    )
    return saved(pipe, out, "AudioLDM 2")


def byte_fallback_gemma() -> Any:
    """Gemma's tokenizer kind: byte fallback over the 256 bytes, Gemma's specials."""
    from transformers import GemmaTokenizer

    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", *(f"<0x{i:02X}>" for i in range(256)), "▁"]
    return GemmaTokenizer(vocab={token: i for i, token in enumerate(tokens)}, merges=[])


def build_stable_audio_3(out: Path, seed: int = 1234) -> Path:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.models.autoencoders.autoencoder_same import AutoencoderSAME
    from diffusers.models.transformers.transformer_stable_audio3 import StableAudio3DiTModel
    from diffusers.pipelines.stable_audio_3 import StableAudio3Pipeline
    from diffusers.pipelines.stable_audio_3.modeling_stable_audio_3 import (
        StableAudio3DurationEmbedder,
    )
    from transformers import T5GemmaConfig, T5GemmaEncoderModel, T5GemmaModuleConfig

    tokenizer = byte_fallback_gemma()
    torch.manual_seed(seed)
    module = T5GemmaModuleConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=512,
        query_pre_attn_scalar=8,
        sliding_window=16,
    )
    config = T5GemmaConfig(
        encoder=module.to_dict(), decoder=module.to_dict(), is_encoder_decoder=False
    )
    latent = 8
    vae = AutoencoderSAME(  # patch 256 x stride 16: the real 4,096 samples a latent frame
        audio_channels=2,
        patch_size=256,
        encoder_channels=16,
        encoder_c_mults=(1,),
        encoder_strides=(16,),
        encoder_transformer_depths=(1,),
        latent_dim=latent,
        dim_heads=8,
        sliding_window=1,
        sampling_rate=STABLE_AUDIO_SAMPLE_RATE,
    )
    transformer = StableAudio3DiTModel(
        io_channels=latent,
        embed_dim=32,
        depth=2,
        num_heads=4,
        cond_token_dim=32,
        global_cond_dim=32,
        local_add_cond_dim=latent + 1,
        timestep_features_dim=16,
        num_memory_tokens=4,
    )
    # SAME's transformer layers start with zero output projections and its resampling blocks'
    # output tokens at 1e-5: the decoder would give one sound whatever the latents; at unit
    # gain they carry them, as trained ones do.
    unit_gain(transformer, vae)
    with torch.no_grad():
        for name, parameter in vae.named_parameters():
            if name.endswith("new_tokens"):
                parameter.normal_()
    pipe = StableAudio3Pipeline(
        vae=vae,
        text_encoder=T5GemmaEncoderModel(config),
        tokenizer=tokenizer,
        duration_embedder=StableAudio3DurationEmbedder(output_dim=32, fourier_dim=16),
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(stochastic_sampling=True),
    )
    return saved(pipe, out, "Stable Audio 3")


BUILDERS = {
    "ace-step": build_ace_step,
    "stable-audio": build_stable_audio,
    "audioldm2": build_audioldm2,
    "stable-audio-3": build_stable_audio_3,
}
