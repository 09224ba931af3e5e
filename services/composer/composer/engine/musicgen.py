"""transformers' MusicGen as a step function over slot rows, with a position per row.

`MusicgenForConditionalGeneration.generate` cannot serve rows at different positions: its decoder
takes one cache length (and so one position) for the whole batch. Here the decoder's own modules
(codebook embeddings, sinusoidal positions, layer norms, projections, feed-forward, LM heads) run
in the decoder's order of operations, and only attention is computed here, against the slot
cache and with each row's own position; a row's logits are those `generate` computes for it alone.

Classifier-free guidance doubles every slot: row 2s is slot s conditioned on its text, row 2s+1
the same slot unconditioned (zero text states, fully masked, as `generate` does).

Every method expects to run under `torch.inference_mode()` (the engine's step does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from composer.engine.slots import SlotCache

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class UnsupportedCheckpoint(ValueError):
    """A checkpoint this backend would serve wrongly: refused at load, never served as noise."""


@dataclass(frozen=True)
class TextCondition:
    """One description's cross-attention keys and values for the conditional row of a slot."""

    keys: torch.Tensor
    """[layers, heads, tokens, head_dim]"""
    values: torch.Tensor


def check_config(config: Any) -> None:
    """Refuse at load what the transformers engine cannot serve correctly."""
    kind = getattr(config, "model_type", None)
    if kind == "musicgen_melody":
        raise UnsupportedCheckpoint(
            "a MusicGen melody checkpoint needs chroma conditioning, which the transformers "
            "backend does not serve: set COMPOSER_BACKEND=audiocraft for melody checkpoints."
        )
    if kind != "musicgen":
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


class MusicgenStepModel:
    """A loaded transformers MusicGen, driven one step (or one prefill) at a time."""

    def __init__(self, model: Any, processor: Any, name: str, max_text_tokens: int) -> None:
        check_config(model.config)
        self.name = name
        self.model = model
        self._processor = processor
        self.max_text_tokens = max_text_tokens
        decoder = model.decoder.model.decoder
        self._decoder = decoder
        self._heads = model.decoder.lm_heads
        config = model.config
        self.device = model.device
        self.dtype = model.dtype
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
        from transformers import AutoConfig, AutoProcessor, MusicgenForConditionalGeneration

        check_config(AutoConfig.from_pretrained(model_id))
        model = MusicgenForConditionalGeneration.from_pretrained(model_id, dtype=DTYPES[dtype])
        model = model.to(device).eval()
        return cls(model, AutoProcessor.from_pretrained(model_id), model_id, max_text_tokens)

    def _tokenize(self, description: str) -> Any:
        return self._processor.tokenizer(
            [description], truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
        )

    def encode_text(self, description: str) -> TextCondition:
        """T5 states of `description`, projected and turned into every layer's cross K/V."""
        with torch.inference_mode():
            return self._encode_text(description)

    def _encode_text(self, description: str) -> TextCondition:
        model = self.model
        inputs = self._tokenize(description).to(self.device)
        states = model.text_encoder(**inputs).last_hidden_state
        if (
            model.text_encoder.config.hidden_size != model.decoder.config.hidden_size
            and model.decoder.config.cross_attention_hidden_size is None
        ):
            states = model.enc_to_dec_proj(states)
        states = states * inputs["attention_mask"][..., None]
        keys, values = [], []
        for layer in self._decoder.layers:
            keys.append(self._split(layer.encoder_attn.k_proj(states))[0])
            values.append(self._split(layer.encoder_attn.v_proj(states))[0])
        return TextCondition(torch.stack(keys), torch.stack(values))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """[N, T, H * D] -> [N, H, T, D]"""
        return x.view(*x.shape[:2], self.heads, self.head_dim).transpose(1, 2)

    def _embed(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """ids [N, K, T], positions [N, T] -> hidden [N, T, D], as the decoder sums them."""
        embed = self._decoder.embed_tokens
        inputs = sum(embed[k](ids[:, k]) for k in range(self.codebooks))
        assert isinstance(inputs, torch.Tensor)
        weights = self._decoder.embed_positions.weights
        return inputs + weights.index_select(0, positions.reshape(-1)).view(*positions.shape, -1)

    def _layers(
        self,
        hidden: torch.Tensor,
        cache: SlotCache,
        rows: slice,
        write: Any,
        keys_until: int,
        self_mask: torch.Tensor | None,
        causal: bool,
        text_until: int,
    ) -> torch.Tensor:
        """Every decoder layer over `rows` of the cache; `write(layer, k, v)` stores new K/V."""
        cross_mask = cache.cross_mask[rows, None, None, :text_until]
        for i, layer in enumerate(self._decoder.layers):
            attn = layer.self_attn
            x = layer.self_attn_layer_norm(hidden)
            q = self._split(attn.q_proj(x))
            write(i, self._split(attn.k_proj(x)), self._split(attn.v_proj(x)))
            out = F.scaled_dot_product_attention(
                q,
                cache.keys[i, rows, :, :keys_until],
                cache.values[i, rows, :, :keys_until],
                attn_mask=self_mask,
                scale=attn.scaling,
                is_causal=causal,
            )
            hidden = hidden + attn.out_proj(self._merge(out))
            cross = layer.encoder_attn
            x = layer.encoder_attn_layer_norm(hidden)
            out = F.scaled_dot_product_attention(
                self._split(cross.q_proj(x)),
                cache.cross_keys[i, rows, :, :text_until],
                cache.cross_values[i, rows, :, :text_until],
                attn_mask=cross_mask,
                scale=cross.scaling,
            )
            hidden = hidden + cross.out_proj(self._merge(out))
            x = layer.final_layer_norm(hidden)
            hidden = hidden + layer.fc2(layer.activation_fn(layer.fc1(x)))
        return self._decoder.layer_norm(hidden)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        """[N, H, T, D] -> [N, T, H * D]"""
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    def prefill(self, cache: SlotCache, slot: int, ids: torch.Tensor) -> None:
        """Feed one slot's first columns ids [K, T] from position 0 (a window's prompt), alone
        and causally, filling its cache rows; the logits are not needed (nothing is sampled)."""
        t = int(ids.shape[-1])
        rows = slice(2 * slot, 2 * slot + 2)
        positions = torch.arange(t, device=self.device).expand(2, t)
        hidden = self._embed(ids.expand(2, -1, -1), positions)

        def write(layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
            cache.keys[layer, rows, :, :t] = k
            cache.values[layer, rows, :, :t] = v

        self._layers(hidden, cache, rows, write, t, None, t > 1, cache.text_tokens)

    def step(
        self, cache: SlotCache, ids: torch.Tensor, positions: torch.Tensor, fixed: bool = False
    ) -> torch.Tensor:
        """One column for the first n slots: ids [n, K] at positions [n] -> float32 logits
        [n, 2, K, V] (conditional, unconditional).

        By default attention reads only as far as the furthest row (and no mask when every row
        is at the same position, as `generate`'s own step). `fixed` reads the whole cache and
        text buffers under masks instead: every step of a given n has the same shapes and no
        host sync, which is what CUDA graphs need."""
        n = int(ids.shape[0])
        rows = slice(0, 2 * n)
        pos = positions.repeat_interleave(2)
        hidden = self._embed(ids.repeat_interleave(2, dim=0)[..., None], pos[:, None])
        mask = None
        if fixed:
            keys_until, text_until = cache.positions, cache.text_capacity
        else:
            keys_until, text_until = int(positions.max()) + 1, cache.text_tokens
        if fixed or bool((positions != keys_until - 1).any()):  # rows at different positions
            span = torch.arange(keys_until, device=self.device)
            mask = (span[None, :] <= pos[:, None])[:, None, None, :]
        index = torch.arange(2 * n, device=self.device)

        def write(layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
            cache.keys[layer][index, :, pos] = k[:, :, 0]
            cache.values[layer][index, :, pos] = v[:, :, 0]

        hidden = self._layers(hidden, cache, rows, write, keys_until, mask, False, text_until)
        logits = torch.stack([head(hidden) for head in self._heads], dim=1)  # [2n, K, 1, V]
        return logits[:, :, -1].float().view(n, 2, self.codebooks, -1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, F] -> audio [C, F * hop]; stereo checkpoints interleave left and right
        codebooks (even left, odd right), each decoded by the mono codec."""
        codec = self.model.audio_encoder
        streams = [codes] if self.channels == 1 else [codes[0::2], codes[1::2]]
        audio = [codec.decode(s[None, None], audio_scales=[None]).audio_values[0] for s in streams]
        return torch.cat(audio, dim=0)
