"""The slot cache: fixed buffers for every slot's self- and cross-attention keys and values.

Buffers are allocated once for `slots` requests (two rows each: conditional, unconditional) and a
window's length of positions, so shapes never change while serving. Active slots are kept packed
at the front (0 … n-1): a step runs on contiguous leading rows, and a slot that leaves is
replaced by the last one (`move`).
"""

from __future__ import annotations

import torch


class SlotCache:
    """Keys/values [layers, 2 * slots, heads, positions, head_dim] and the text they attend."""

    def __init__(
        self,
        slots: int,
        layers: int,
        heads: int,
        head_dim: int,
        positions: int,
        text_tokens: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.slots = slots
        self.positions = positions
        self.text_capacity = text_tokens
        shape = (layers, 2 * slots, heads, positions, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        cross = (layers, 2 * slots, heads, text_tokens, head_dim)
        # Unconditional rows stay zero (and fully masked): `generate` gives them zero text states.
        self.cross_keys = torch.zeros(cross, dtype=dtype, device=device)
        self.cross_values = torch.zeros(cross, dtype=dtype, device=device)
        self.cross_mask = torch.zeros((2 * slots, text_tokens), dtype=torch.bool, device=device)
        self._text = [0] * slots
        self.text_tokens = 0
        """Text positions the active slots need (attention reads no further)."""

    def set_text(self, slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Condition slot `slot` on a text's cross K/V [layers, heads, tokens, head_dim]."""
        tokens = int(keys.shape[2])
        row = 2 * slot
        self.cross_keys[:, row].zero_()
        self.cross_values[:, row].zero_()
        self.cross_keys[:, row, :, :tokens] = keys
        self.cross_values[:, row, :, :tokens] = values
        self.cross_mask[row] = False
        self.cross_mask[row, :tokens] = True
        self._text[slot] = tokens

    def move(self, source: int, target: int, used_positions: int) -> None:
        """Copy slot `source` (its first `used_positions` positions) into slot `target`."""
        src = slice(2 * source, 2 * source + 2)
        dst = slice(2 * target, 2 * target + 2)
        self.keys[:, dst, :, :used_positions] = self.keys[:, src, :, :used_positions]
        self.values[:, dst, :, :used_positions] = self.values[:, src, :, :used_positions]
        self.cross_keys[:, dst] = self.cross_keys[:, src]
        self.cross_values[:, dst] = self.cross_values[:, src]
        self.cross_mask[dst] = self.cross_mask[src]
        self._text[target] = self._text[source]

    def resize_text(self, active: int) -> None:
        """Attend only as far as the longest text among the first `active` slots."""
        self.text_tokens = max(self._text[:active], default=0)
