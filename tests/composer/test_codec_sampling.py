"""The sampler (`composer/codec/sampling.py`): reproducible, top-k, greedy at zero temperature."""

from __future__ import annotations

import torch

from composer.codec.sampling import sample
from composer.generation import GenerationParams


def test_sampling_is_reproducible_and_respects_top_k() -> None:
    logits = torch.randn(8, 50, generator=torch.Generator().manual_seed(0))
    params = GenerationParams(duration_s=1, seed=3, top_k=5)
    first = sample(logits, params, torch.Generator().manual_seed(3))
    again = sample(logits, params, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    top5 = torch.topk(logits, 5).indices
    assert all(first[i] in top5[i] for i in range(8))
    greedy = sample(
        logits, GenerationParams(duration_s=1, seed=3, temperature=0), torch.Generator()
    )
    assert torch.equal(greedy, logits.argmax(-1))
    nucleus = GenerationParams(duration_s=1, seed=3, top_k=0, top_p=1e-6)
    assert torch.equal(sample(logits, nucleus, torch.Generator().manual_seed(1)), logits.argmax(-1))


def test_a_vanishing_temperature_is_greedy_not_an_overflow() -> None:
    """6e-207 is 0 in float32: dividing by it gave inf logits and NaN probabilities, and the
    stream broke (found by the contract fuzzer)."""
    logits = torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
    tiny = GenerationParams(duration_s=1, seed=1, temperature=6.0047409720021954e-207)
    assert torch.equal(sample(logits, tiny, torch.Generator().manual_seed(1)), logits.argmax(-1))
