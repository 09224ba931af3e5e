"""The delay pattern read back (`composer/codec/streaming.py`), mono and stereo."""

from __future__ import annotations

import torch

from composer.codec.streaming import undelay


def test_undelay_reads_each_codebook_at_its_offset() -> None:
    # ids[b, k, t]: codebook k of frame f sits at column 1 + f + k.
    frames = torch.arange(12).reshape(4, 3)  # [K=4, F=3]
    ids = torch.full((1, 4, 1 + 3 + 3), -1)
    for k in range(4):
        ids[0, k, 1 + k : 1 + k + 3] = frames[k]
    assert torch.equal(undelay(ids, [0, 1, 2, 3])[0], frames)
    assert undelay(ids[:, :, :3], [0, 1, 2, 3]).shape == (1, 4, 0)


def test_undelay_reads_stereo_pairs_at_their_shared_delay() -> None:
    """musicgen-stereo: codebooks 2c and 2c+1 (left, right) both wait c steps."""
    delays = [0, 0, 1, 1, 2, 2, 3, 3]
    frames = torch.arange(24).reshape(8, 3)
    ids = torch.full((1, 8, 1 + 3 + 3), -1)
    for k, d in enumerate(delays):
        ids[0, k, 1 + d : 1 + d + 3] = frames[k]
    assert torch.equal(undelay(ids, delays)[0], frames)
