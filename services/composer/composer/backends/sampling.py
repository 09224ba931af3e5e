"""Per-row sampling with per-row random generators, so a seed means the same audio whether the
request ran alone or in a batch.

The model's own sampling draws from one global generator shared by the whole batch; here each
row samples its tokens (temperature, top-k, top-p) with its own `torch.Generator` and hands the
model a one-hot choice that its greedy step then takes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from composer.backends import GenerationParams

NOT_CHOSEN = -1e4
"""Finite on purpose: transformers appends its guidance processor after ours, and it must keep
the choice (guidance of equal one-hot halves is the same one-hot; with -inf it would be NaN)."""


class RowSampler:
    """Samples the next token of every codebook of every row.

    Scores are [B * K, V], or [2 * B * K, V] (conditional then unconditional halves) when the
    model runs classifier-free guidance and hands us both: then the guidance is applied here,
    before sampling, and the choice is returned for both halves.
    """

    def __init__(self, params: Sequence[GenerationParams], codebooks: int, device: str) -> None:
        self._params = list(params)
        self._codebooks = codebooks
        self._guidance = self._params[0].guidance
        self._generators = []
        for p in self._params:
            generator = torch.Generator(device=device)
            generator.manual_seed(p.seed)
            self._generators.append(generator)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        k = self._codebooks
        rows = len(self._params) * k
        guided = scores.float()
        if scores.shape[0] == 2 * rows:
            conditional, unconditional = guided[:rows], guided[rows:]
            guided = unconditional + self._guidance * (conditional - unconditional)
        chosen = torch.full_like(guided, NOT_CHOSEN)
        for row, (params, generator) in enumerate(zip(self._params, self._generators, strict=True)):
            lines = slice(row * k, (row + 1) * k)
            tokens = sample(guided[lines], params, generator)
            chosen[lines] = chosen[lines].scatter(1, tokens[:, None], 0.0)
        if scores.shape[0] == 2 * rows:
            chosen = torch.cat([chosen, chosen])
        return chosen.to(scores.dtype)


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a module's weights live (audiocraft's `LMModel` has no `.device`): per-row
    generators must be made there, or `torch.multinomial` on that device refuses them."""
    return next(module.parameters()).device


def sample(
    logits: torch.Tensor, params: GenerationParams, generator: torch.Generator
) -> torch.Tensor:
    """One token per line of `logits` [N, V]: greedy at temperature 0, else top-k / top-p."""
    if params.temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / params.temperature
    if 0 < params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if 0 < params.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > params.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(1, order, sorted_probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
