"""Per-row sampling with per-row random generators, so a seed means the same audio whether the
request ran alone or in a batch.

The models' own sampling draws from one global generator shared by the whole batch; here each
row samples its tokens (temperature, top-k, top-p) with its own `torch.Generator`.
"""

from __future__ import annotations

import torch

from composer.backends import GenerationParams

GREEDY_BELOW = 1e-4
"""Temperatures under this sample greedily (the limit they tend to, without the overflow)."""


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a module's weights live (audiocraft's `LMModel` has no `.device`): per-row
    generators must be made there, or `torch.multinomial` on that device refuses them."""
    return next(module.parameters()).device


def sample(
    logits: torch.Tensor, params: GenerationParams, generator: torch.Generator
) -> torch.Tensor:
    """One token per line of `logits` [N, V]: greedy at temperature 0 (or so close to it that
    dividing by it overflows: 6e-207 is 0 in float32), else top-k / top-p."""
    if params.temperature < GREEDY_BELOW:
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
