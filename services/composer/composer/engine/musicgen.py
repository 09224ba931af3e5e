"""transformers' MusicGen (and MusicGen-melody) as a step function over slot rows, with a position
per row.

`MusicgenForConditionalGeneration.generate` cannot serve rows at different positions: its decoder
takes one cache length (and so one position) for the whole batch. Here the decoder's own modules
(codebook embeddings, sinusoidal positions, layer norms, projections, feed-forward, LM heads) run
in the decoder's order of operations, and only attention is computed here, against the slot
cache and with each row's own position; a row's logits are those `generate` computes for it alone.

Classifier-free guidance doubles every slot: row 2s is slot s conditioned on its text, row 2s+1
the same slot unconditioned (zero text states, fully masked, as `generate` does).

A melody checkpoint (`musicgen_melody`) has no cross-attention: its decoder reads the condition
as a prefix of hidden states before the first token column, `chroma_length` projected chroma
frames then the projected text, at positions 0 … P-1; its token columns start at position P.
The unconditional row's prefix is the "null" chroma (pitch class 0) and zero text states, as
`generate` builds it. Each window has its own prefix (the melody heard from the window's start).

Every method expects to run under `torch.inference_mode()` (the engine's step does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from composer.dtypes import DTYPES
from composer.engine.slots import SlotCache


class UnsupportedCheckpoint(ValueError):
    """A checkpoint this backend would serve wrongly: refused at load, never served as noise."""


MELODY = "musicgen_melody"


@dataclass(frozen=True)
class TextCondition:
    """One description's cross-attention keys and values for the conditional row of a slot."""

    keys: torch.Tensor
    """[layers, heads, tokens, head_dim]"""
    values: torch.Tensor


@dataclass(frozen=True)
class Condition:
    """What one request conditions on: cross-attention text (MusicGen) or, for a melody
    checkpoint, one prefix per window [2, P, D] (conditional, unconditional rows)."""

    text: TextCondition | None = None
    prefixes: tuple[torch.Tensor, ...] = ()
    section_texts: tuple[TextCondition, ...] = ()
    """The texts of the request's later sections, in order (text checkpoints only)."""

    @property
    def prefix_length(self) -> int:
        return int(self.prefixes[0].shape[1]) if self.prefixes else 0

    def prefix(self, window: int) -> torch.Tensor | None:
        """Window `window`'s prefix (the last one for any window beyond those prepared)."""
        return self.prefixes[min(window, len(self.prefixes) - 1)] if self.prefixes else None


def check_config(config: Any) -> None:
    """Refuse at load what the transformers engine cannot serve correctly."""
    kind = getattr(config, "model_type", None)
    if kind not in ("musicgen", MELODY):
        raise UnsupportedCheckpoint(f"not a MusicGen checkpoint (model_type={kind!r}).")
    channels = int(config.decoder.audio_channels)
    codebooks = int(config.decoder.num_codebooks)
    codec_codebooks = int(config.audio_encoder.num_quantizers)
    if channels not in (1, 2) or codebooks != channels * codec_codebooks:
        raise UnsupportedCheckpoint(
            f"{codebooks} codebooks for {channels} channel(s) do not fit a codec of "
            f"{codec_codebooks} codebooks."
        )


def delays_of(model: Any) -> list[int]:
    """Each codebook's delay in steps, read from the model's own delay pattern (mono: k for
    codebook k; stereo: the left/right pair of each level shares a delay)."""
    decoder = model.decoder
    k = int(decoder.num_codebooks)
    pad = int(model.generation_config.pad_token_id)
    start = torch.full((k, 1), pad, dtype=torch.long, device=model.device)
    _, pattern = decoder.build_delay_pattern_mask(start, pad, max_length=4 * k)
    # Codebook k's first predicted column is 1 + its delay (column 0 holds the start token).
    return [int((row == -1).nonzero()[0]) - 1 for row in pattern.reshape(k, -1)]


def keep_fp32(model: Any) -> None:
    """The codec and the text encoder in float32 whatever the language model's dtype, as
    audiocraft keeps its compression model: a half-precision codec raises the audio's noise
    floor (bf16's 8-bit mantissa is audible), and T5 overflows in float16 (transformers keeps
    its feed-forward output in float32 for that reason). Both run once per chunk or request,
    so their cost is small beside the decoder's steps."""
    model.audio_encoder.float()
    model.text_encoder.float()


class MusicgenStepModel:
    """A loaded transformers MusicGen, driven one step (or one prefill) at a time."""

    def __init__(self, model: Any, tokenizer: Any, name: str, max_text_tokens: int) -> None:
        check_config(model.config)
        self.name = name
        self.model = model
        self._tokenizer = tokenizer
        self.max_text_tokens = max_text_tokens
        decoder = model.decoder.model.decoder
        self._decoder = decoder
        self._heads = model.decoder.lm_heads
        config = model.config
        self.melody: bool = config.model_type == MELODY
        self.chroma_length = int(config.chroma_length) if self.melody else 0
        self.num_chroma = int(config.num_chroma) if self.melody else 0
        self.prefix_capacity = self.chroma_length + max_text_tokens if self.melody else 0
        """Positions a window's prefix may take before its token columns."""
        keep_fp32(model)
        self.device = model.device
        self.dtype = model.decoder.dtype
        """The language model's dtype (the codec and T5 stay in float32)."""
        self.codebooks = int(config.decoder.num_codebooks)
        self.channels = int(config.decoder.audio_channels)
        self.sample_rate = int(config.audio_encoder.sampling_rate)
        self.hop = int(math.prod(config.audio_encoder.upsampling_ratios))
        self.pad = int(model.generation_config.pad_token_id)
        self.delays = delays_of(model)
        self.layers = len(decoder.layers)
        attention = decoder.layers[0].self_attn
        self.heads = int(attention.num_heads)
        self.head_dim = int(attention.head_dim)
        self.max_positions = int(decoder.embed_positions.weights.shape[0])

    @classmethod
    def load(
        cls, model_id: str, device: str, dtype: str, max_text_tokens: int
    ) -> MusicgenStepModel:
        from transformers import (
            AutoConfig,
            AutoTokenizer,
            MusicgenForConditionalGeneration,
            MusicgenMelodyForConditionalGeneration,
        )

        config = AutoConfig.from_pretrained(model_id)
        check_config(config)
        kind = (
            MusicgenMelodyForConditionalGeneration
            if config.model_type == MELODY
            else MusicgenForConditionalGeneration
        )
        model = kind.from_pretrained(model_id, dtype=DTYPES[dtype]).to(device).eval()
        # The tokenizer alone: a melody checkpoint's processor needs torchaudio for its chroma,
        # which `composer.chroma` computes in torch instead.
        return cls(model, AutoTokenizer.from_pretrained(model_id), model_id, max_text_tokens)

    def tokenize(self, description: str) -> Any:
        return self._tokenizer(
            [description], truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
        )

    def reserve_positions(self, positions: int) -> None:
        """Make room for `positions` sinusoidal positions (a melody window's prefix comes before
        its columns); the module extends itself the same way when `generate` needs more."""
        embed = self._decoder.embed_positions
        if positions > int(embed.weights.shape[0]):
            embed.make_weights(positions, embed.embedding_dim)

    def condition(self, description: str, chromas: list[torch.Tensor | None]) -> Condition:
        """What a request conditions on: its text's cross K/V, or for a melody checkpoint a
        prefix per window from that window's chroma one-hots [frames, num_chroma] (None: no
        melody, the null chroma)."""
        with torch.inference_mode():
            states = self._text_states(description)
            if not self.melody:
                return Condition(text=self._cross_kv(states))
            return Condition(prefixes=tuple(self._prefix(states, c) for c in chromas or [None]))

    def _text_states(self, description: str) -> torch.Tensor:
        """[1, T, D]: T5's states, projected to the decoder's width where they differ."""
        model = self.model
        inputs = self.tokenize(description).to(self.device)
        states = model.text_encoder(**inputs).last_hidden_state.to(self.dtype)
        project = model.text_encoder.config.hidden_size != model.decoder.config.hidden_size
        if project and getattr(model.decoder.config, "cross_attention_hidden_size", None) is None:
            states = model.enc_to_dec_proj(states)
        return states * inputs["attention_mask"][..., None]

    def _prefix(self, text: torch.Tensor, chroma: torch.Tensor | None) -> torch.Tensor:
        """[2, chroma_length + T, D]: the conditional and unconditional rows' prefix."""
        null = torch.zeros((1, self.num_chroma), device=self.device, dtype=self.dtype)
        null[:, 0] = 1
        features = null if chroma is None else chroma.to(self.device, self.dtype)
        projected = [self._chroma(features), self._chroma(null)]
        conditional = torch.cat([projected[0], text[0]])
        unconditional = torch.cat([projected[1], torch.zeros_like(text[0])])
        return torch.stack([conditional, unconditional])

    def _chroma(self, features: torch.Tensor) -> torch.Tensor:
        """Chroma one-hots [F, 12] -> [chroma_length, D], repeated and cut as `generate` does."""
        model = self.model
        states = features
        if self.num_chroma != model.decoder.config.hidden_size:
            states = model.audio_enc_to_dec_proj(features)
        repeat = math.ceil(self.chroma_length / states.shape[0])
        return states.repeat(repeat, 1)[: self.chroma_length]

    def _cross_kv(self, states: torch.Tensor) -> TextCondition:
        keys, values = [], []
        for layer in self._decoder.layers:
            keys.append(self._split(layer.encoder_attn.k_proj(states))[0])
            values.append(self._split(layer.encoder_attn.v_proj(states))[0])
        return TextCondition(torch.stack(keys), torch.stack(values))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """[N, T, H * D] -> [N, H, T, D]"""
        return x.view(*x.shape[:2], self.heads, self.head_dim).transpose(1, 2)

    def _tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [N, K, T] -> [N, T, D]: the codebooks' embeddings summed, as the decoder does."""
        embed = self._decoder.embed_tokens
        inputs = sum(embed[k](ids[:, k]) for k in range(self.codebooks))
        assert isinstance(inputs, torch.Tensor)
        return inputs

    def _positions(self, positions: torch.Tensor) -> torch.Tensor:
        """positions [N, T] -> their sinusoidal embeddings [N, T, D]."""
        weights = self._decoder.embed_positions.weights
        return weights.index_select(0, positions.reshape(-1)).view(*positions.shape, -1)

    def _layers(
        self,
        hidden: torch.Tensor,
        cache: SlotCache,
        slots: slice,
        write: Any,
        keys_until: int,
        self_mask: torch.Tensor | None,
        causal: bool,
        text_until: int,
    ) -> torch.Tensor:
        """Every decoder layer over the rows of `slots`; `write(layer, k, v)` stores new K/V.

        Cross-attention is computed for the conditional rows only (even rows): the
        unconditional row's text is zero and fully masked, its attention output zero."""
        rows = slice(2 * slots.start, 2 * slots.stop)
        conditional_rows = torch.arange(0, rows.stop - rows.start, 2, device=self.device)
        cross_mask = cache.cross_mask[slots, None, None, :text_until]
        for i, layer in enumerate(self._decoder.layers):
            attn = layer.self_attn
            x = layer.self_attn_layer_norm(hidden)
            q = self._split(attn.q_proj(x))
            write(i, self._split(attn.k_proj(x)), self._split(attn.v_proj(x)))
            out = F.scaled_dot_product_attention(
                q,
                cache.keys[i][rows, :, :keys_until],
                cache.values[i][rows, :, :keys_until],
                attn_mask=self_mask,
                scale=attn.scaling,
                is_causal=causal,
            )
            hidden = hidden + attn.out_proj(self._merge(out))
            if not self.melody:  # MusicGen's text is cross-attended; a melody model's is a prefix
                cross = layer.encoder_attn
                x = layer.encoder_attn_layer_norm(hidden)
                conditional = F.scaled_dot_product_attention(
                    self._split(cross.q_proj(x))[0::2],
                    cache.cross_keys[i, slots, :, :text_until],
                    cache.cross_values[i, slots, :, :text_until],
                    attn_mask=cross_mask,
                    scale=cross.scaling,
                )
                # out_proj(0) is 0 for the unconditional rows: MusicGen's decoder projections
                # have no bias (transformers builds them so)
                delta = F.linear(self._merge(conditional), cross.out_proj.weight)
                hidden = hidden.index_add(0, conditional_rows, delta)
            x = layer.final_layer_norm(hidden)
            hidden = hidden + layer.fc2(layer.activation_fn(layer.fc1(x)))
        return self._decoder.layer_norm(hidden)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        """[N, H, T, D] -> [N, T, H * D]"""
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    def prefill(
        self, cache: SlotCache, slot: int, ids: torch.Tensor, prefix: torch.Tensor | None = None
    ) -> None:
        """Feed one slot's window start from position 0, alone and causally, filling its cache
        rows: the prefix [2, P, D] (melody checkpoints) then the columns ids [K, T] (a window's
        prompt); the logits are not needed (nothing is sampled)."""
        rows = slice(2 * slot, 2 * slot + 2)
        parts = [] if prefix is None else [prefix]
        if ids.shape[-1]:
            parts.append(self._tokens(ids.expand(2, -1, -1)))
        hidden = torch.cat(parts, dim=1)
        t = int(hidden.shape[1])
        hidden = hidden + self._positions(torch.arange(t, device=self.device).expand(2, t))

        def write(layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
            cache.keys[layer][rows, :, :t] = k
            cache.values[layer][rows, :, :t] = v

        slots = slice(slot, slot + 1)
        self._layers(hidden, cache, slots, write, t, None, t > 1, cache.text_tokens)

    def step(
        self,
        cache: SlotCache,
        ids: torch.Tensor,
        positions: torch.Tensor,
        keys_until: int,
        text_until: int,
        masked: bool,
    ) -> torch.Tensor:
        """One column for the first n slots: ids [n, K] at positions [n] -> float32 logits
        [n, 2, K, V] (conditional, unconditional).

        Attention reads keys [0, keys_until) and text [0, text_until): the caller knows the
        rows' positions on the host, so nothing is read back from the device. `masked` (rows at
        different positions, or a fixed-shape step reading the whole cache) masks each row's
        keys beyond its own position. A fixed-shape step (the whole cache and text buffer,
        always masked) has the same shapes for a given n and no host sync: what CUDA graphs
        need."""
        n = int(ids.shape[0])
        pos = positions.repeat_interleave(2)
        ids = ids.repeat_interleave(2, dim=0)[..., None]
        hidden = self._tokens(ids) + self._positions(pos[:, None])
        mask = None
        if masked:
            span = torch.arange(keys_until, device=self.device)
            mask = (span[None, :] <= pos[:, None])[:, None, None, :]
        index = torch.arange(2 * n, device=self.device)

        def write(layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
            cache.keys[layer][index, :, pos] = k[:, :, 0]
            cache.values[layer][index, :, pos] = v[:, :, 0]

        slots = slice(0, n)
        hidden = self._layers(hidden, cache, slots, write, keys_until, mask, False, text_until)
        logits = torch.stack([head(hidden) for head in self._heads], dim=1)  # [2n, K, 1, V]
        return logits[:, :, -1].float().view(n, 2, self.codebooks, -1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, F] -> audio [C, F * hop]; stereo checkpoints interleave left and right
        codebooks (even left, odd right), each decoded by the mono codec."""
        codec = self.model.audio_encoder
        streams = [codes] if self.channels == 1 else [codes[0::2], codes[1::2]]
        audio = [codec.decode(s[None, None], audio_scales=[None]).audio_values[0] for s in streams]
        return torch.cat(audio, dim=0)
