"""`model.generate` driven with the engine's per-row sampler: the reference the engine's tokens
are compared with (generate's own sampler draws from one global generator for the batch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from composer.codec.sampling import sample
from composer.generation import GenerationParams

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
