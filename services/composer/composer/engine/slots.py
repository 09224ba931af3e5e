"""The slot cache: fixed buffers for every slot's self- and cross-attention keys and values.

Buffers are allocated once for `slots` requests (two rows each: conditional, unconditional) and a
window's length of positions, so shapes never change while serving. Active slots are kept packed
at the front (0 … n-1): a step runs on contiguous leading rows, and a slot that leaves is
replaced by the last one (`move`).

Self-attention K/V is one buffer per layer, as transformers' `StaticCache` keeps it: a compiled
step writes each layer's new K/V into its own buffer in place. With one 5-D buffer written
through a `select` view, Inductor clones and copies back every layer's whole slab every step
(every slot, active or not). Every buffer is marked static (`mark_static`) so that a captured
CUDA graph may mutate it: cudagraph trees refuse graphs that mutate inputs they do not own.

Cross-attention K/V exists for the conditional rows only: an unconditional row's text states are
zero and fully masked in `generate`, so its cross-attention output is zero by definition and the
step skips it (no fully masked row is ever handed to an attention kernel).
"""

from __future__ import annotations

import torch


class SlotCache:
    """Keys/values per layer [2 * slots, heads, positions, head_dim]; the text each slot's
    conditional row attends, [layers, slots, heads, text_tokens, head_dim]."""

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
        shape = (2 * slots, heads, positions, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        cross = (layers, slots, heads, text_tokens, head_dim)
        self.cross_keys = torch.zeros(cross, dtype=dtype, device=device)
        self.cross_values = torch.zeros(cross, dtype=dtype, device=device)
        self.cross_mask = torch.zeros((slots, text_tokens), dtype=torch.bool, device=device)
        if text_tokens:
            # A slot without text (a padding row of a fixed-shape step) still sees one key:
            # a fully masked row is 0 in some attention kernels and NaN in others.
            self.cross_mask[:, 0] = True
        self._text = [0] * slots
        self.text_tokens = 0
        """Text positions the active slots need (attention reads no further)."""

    def buffers(self) -> list[torch.Tensor]:
        return [*self.keys, *self.values, self.cross_keys, self.cross_values, self.cross_mask]

    def mark_static(self) -> None:
        """Tell torch.compile these buffers live as long as the graphs (their addresses never
        change), so a captured graph may write them in place."""
        for buffer in self.buffers():
            torch._dynamo.mark_static_address(buffer)

    def set_text(self, slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Condition slot `slot` on a text's cross K/V [layers, heads, tokens, head_dim]."""
        tokens = int(keys.shape[2])
        self.cross_keys[:, slot].zero_()
        self.cross_values[:, slot].zero_()
        self.cross_keys[:, slot, :, :tokens] = keys
        self.cross_values[:, slot, :, :tokens] = values
        self.cross_mask[slot] = False
        self.cross_mask[slot, : max(1, tokens)] = True
        self._text[slot] = tokens

    def move(self, source: int, target: int, used_positions: int) -> None:
        """Copy slot `source` (its first `used_positions` positions) into slot `target`."""
        src = slice(2 * source, 2 * source + 2)
        dst = slice(2 * target, 2 * target + 2)
        for keys, values in zip(self.keys, self.values, strict=True):
            keys[dst, :, :used_positions] = keys[src, :, :used_positions]
            values[dst, :, :used_positions] = values[src, :, :used_positions]
        self.cross_keys[:, target] = self.cross_keys[:, source]
        self.cross_values[:, target] = self.cross_values[:, source]
        self.cross_mask[target] = self.cross_mask[source]
        self._text[target] = self._text[source]

    def resize_text(self, active: int) -> None:
        """Attend only as far as the longest text among the first `active` slots."""
        longest = max(self._text[:active], default=0)
        self.text_tokens = min(max(1, longest), self.text_capacity)

    @staticmethod
    def bytes_per_slot(
        layers: int, heads: int, head_dim: int, positions: int, text_tokens: int, dtype: torch.dtype
    ) -> int:
        """Memory one slot takes: two rows of self K/V over every position, one row of cross
        K/V over the text buffer (what `COMPOSER_MAX_BATCH_SIZE=auto` divides free memory by)."""
        width = heads * head_dim * int(torch.empty((), dtype=dtype).element_size())
        return layers * 2 * width * (2 * positions + text_tokens)
