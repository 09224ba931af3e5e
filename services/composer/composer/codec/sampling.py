"""Per-row sampling with per-row random generators, so a seed means the same draws whether the
request ran alone or in a batch — and no device-to-host synchronisation.

The models' own sampling draws from one global generator shared by the whole batch; here each
row draws its own noise from its own `torch.Generator`. A token is drawn by the exponential race
(argmax of p / E with E ~ Exp(1), the Gumbel-max trick in another guise), which samples exactly
the categorical distribution `torch.multinomial` does but, unlike it, checks nothing on the host
(multinomial reads two values back per call: a sync per row per step on a GPU). vLLM's sampler
draws the same way for the same reason.

`RowKnobs` holds a batch's temperatures, top-k, top-p and guidance as device tensors, built once
when the batch changes; `sample_rows` then samples every row in a handful of batched ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from composer.generation import GenerationParams

GREEDY_BELOW = 1e-4
"""Temperatures under this sample greedily (the limit they tend to, without the overflow)."""

TOP_P_OFF = 2.0
"""A nucleus no cumulative probability reaches (top-p off)."""


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a module's weights live (audiocraft's `LMModel` has no `.device`): per-row
    generators must be made there, or drawing noise on that device refuses them."""
    return next(module.parameters()).device


def host_to_device(
    values: Sequence[float], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """A small host list on `device` without blocking: through pinned memory on CUDA (a copy
    from pageable memory waits for the stream), as is on the CPU."""
    host = torch.tensor(values, dtype=dtype, device="cpu", pin_memory=device.type == "cuda")
    return host.to(device, non_blocking=True)


@dataclass(frozen=True)
class RowKnobs:
    """One batch's sampling knobs, a line per row, on the rows' device."""

    temperature: torch.Tensor
    """[n, 1, 1] (1 for greedy rows, whose argmax needs no scaling)"""
    greedy: torch.Tensor
    """[n, 1] bool"""
    top_k: torch.Tensor
    """[n, 1, 1] long, the vocabulary size where top-k is off"""
    top_p: torch.Tensor
    """[n, 1, 1], `TOP_P_OFF` where top-p is off"""
    guidance: torch.Tensor
    """[n, 1, 1]"""
    max_top_k: int
    """The largest top-k of the rows that use one (the vocabulary size: none does)."""
    any_top_p: bool
    any_sampled: bool

    @classmethod
    def of(cls, params: Sequence[GenerationParams], vocab: int, device: torch.device) -> RowKnobs:
        greedy = [p.temperature < GREEDY_BELOW for p in params]
        top_k = [p.top_k if 0 < p.top_k < vocab else vocab for p in params]
        top_p = [p.top_p if 0 < p.top_p < 1 else TOP_P_OFF for p in params]
        n = len(params)

        def column(values: Sequence[float], dtype: torch.dtype) -> torch.Tensor:
            return host_to_device(values, dtype, device).view(n, 1, 1)

        return cls(
            temperature=column(
                [1.0 if g else p.temperature for g, p in zip(greedy, params, strict=True)],
                torch.float32,
            ),
            greedy=column(greedy, torch.bool).view(n, 1),
            top_k=column(top_k, torch.long),
            top_p=column(top_p, torch.float32),
            guidance=column([p.guidance for p in params], torch.float32),
            max_top_k=max((k for k in top_k if k < vocab), default=vocab),
            any_top_p=any(p < 1 for p in top_p),
            any_sampled=not all(greedy),
        )


def draw_noise(
    shape: Sequence[int], generator: torch.Generator, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Exp(1) noise from one row's generator (into `out`, a row of a batch's buffer)."""
    if out is None:
        out = torch.empty(tuple(shape), device=generator.device)
    return out.exponential_(generator=generator)


def sample_rows(logits: torch.Tensor, knobs: RowKnobs, noise: torch.Tensor) -> torch.Tensor:
    """One token per codebook per row: logits [n, K, V] (already guided), noise [n, K, V] of
    Exp(1) draws -> tokens [n, K]. Greedy rows take the argmax; the others sample from their
    top-k / top-p distribution at their temperature."""
    greedy_tokens = logits.argmax(dim=-1)
    if not knobs.any_sampled:
        return greedy_tokens
    logits = logits / knobs.temperature
    vocab = logits.shape[-1]
    if knobs.max_top_k < vocab:
        top = torch.topk(logits, knobs.max_top_k, dim=-1).values
        kth = top.gather(-1, (knobs.top_k.clamp(max=knobs.max_top_k) - 1).expand(*top.shape[:2], 1))
        kth = torch.where(knobs.top_k >= vocab, float("-inf"), kth)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if knobs.any_top_p:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > knobs.top_p
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
    sampled = (probs / noise).argmax(dim=-1)
    return torch.where(knobs.greedy, greedy_tokens, sampled)


def sample(
    logits: torch.Tensor, params: GenerationParams, generator: torch.Generator
) -> torch.Tensor:
    """One token per line of `logits` [N, V] for one request: the engine's sampler on a batch of
    one (the batch scheduler's backends and the reference sampler of the tests share it)."""
    knobs = RowKnobs.of([params], int(logits.shape[-1]), logits.device)
    noise = draw_noise(logits.shape, generator)
    return sample_rows(logits.float()[None], knobs, noise[None])[0]
