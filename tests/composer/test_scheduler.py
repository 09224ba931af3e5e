"""Which requests may share a batch (`composer/scheduler.py`)."""

from __future__ import annotations

import numpy as np

from composer.generation import GenerationParams, GenerationRequest, Melody
from composer.scheduler import compatible


def test_batches_share_guidance_batch_group_and_melody_presence() -> None:
    def row(
        guidance: float = 3.0, group: int | None = 5, melody: bool = False
    ) -> GenerationRequest:
        clip = Melody(np.zeros(100, dtype=np.float32), 32000) if melody else None
        params = GenerationParams(duration_s=1.0, seed=1, guidance=guidance)
        return GenerationRequest("x", params, clip, group)

    assert compatible(row(), row())
    assert not compatible(row(), row(guidance=4.0))
    assert not compatible(row(), row(group=6))
    assert not compatible(row(), row(melody=True))
    assert compatible(row(group=None, melody=True), row(group=None, melody=True))
