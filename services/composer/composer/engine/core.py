"""The engine's step loop, synchronous: admit, prefill, one step over the active rows, retire.

Scheduling is per step, not per batch: a request admitted between two steps is in the next one,
and a row that finishes or is cancelled leaves its slot before the next one (its compute stops
there). Active rows are packed into slots 0 … n-1, so a step runs on the leading rows of the
cache. Threads, queues and the event loop are `runner`'s business; tests drive this directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from composer.backends import GenerationRequest
from composer.engine.musicgen import Condition, MusicgenStepModel
from composer.engine.rows import Geometry, Listener, Row
from composer.engine.slots import SlotCache

logger = logging.getLogger(__name__)


class EngineCore:
    """Slots over one `MusicgenStepModel`; `step()` advances every active row by one column."""

    def __init__(
        self,
        model: MusicgenStepModel,
        geometry: Geometry,
        slots: int,
        fixed_shapes: bool = False,
        cuda_graphs: bool = False,
    ) -> None:
        if geometry.positions > model.max_positions:
            raise ValueError(
                f"a {geometry.window_s:g} s window needs {geometry.positions} positions; "
                f"{model.name} has {model.max_positions}: lower COMPOSER_WINDOW_S."
            )
        self.model = model
        self.geometry = geometry
        self.slots = slots
        positions = model.prefix_capacity + geometry.positions
        model.reserve_positions(positions)
        self.cache = SlotCache(
            slots,
            model.layers,
            model.heads,
            model.head_dim,
            positions,
            0 if model.melody else model.max_text_tokens,
            model.dtype,
            model.device,
        )
        self.rows: list[Row] = []
        """Active rows; row i lives in slot i."""
        self._fixed = fixed_shapes or cuda_graphs
        self._forward = model.step
        if cuda_graphs:
            # One captured graph per bucket: the fixed-shape step has no data-dependent shape
            # and no host sync. Off by default until measured on a GPU (bench/gpu).
            self._forward = torch.compile(model.step, mode="reduce-overhead", dynamic=False)

    @property
    def free_slots(self) -> int:
        return self.slots - len(self.rows)

    def admit(self, request: GenerationRequest, listener: Listener, condition: Condition) -> Row:
        """Give a request the next free slot; it takes part from the next step on."""
        if not self.free_slots:
            raise RuntimeError("no free slot")
        with torch.inference_mode():
            if condition.text is not None:
                self.cache.set_text(len(self.rows), condition.text.keys, condition.text.values)
            row = Row(
                request, listener, self.geometry, self.model.decode, self.model.device, condition
            )
        self.rows.append(row)
        return row

    def step(self) -> int:
        """Advance every active row by one column; returns how many rows were stepped."""
        with torch.inference_mode():
            return self._step()

    def _step(self) -> int:
        self._retire(lambda row: row.listener.cancelled)
        if not self.rows:
            return 0
        self.cache.resize_text(len(self.rows))
        for slot, row in enumerate(self.rows):
            if row.needs_prefill:
                self.model.prefill(self.cache, slot, *row.prefill())
        n = len(self.rows)
        ids = torch.stack([row.next_ids() for row in self.rows])
        positions = torch.tensor([row.position for row in self.rows], device=self.model.device)
        if self._fixed:
            ids, positions = self._padded(ids, positions)
            logits = self._forward(self.cache, ids, positions, fixed=True)[:n]
        else:
            logits = self._forward(self.cache, ids, positions)
        for i, row in enumerate(self.rows):
            row.advance(logits[i])
            if row.window_done:
                row.close_window()
        self._retire(lambda row: row.finished)
        return n

    def _padded(
        self, ids: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad the rows up to the slot bucket (1, 2, 4, 8 … up to `slots`): padding rows sit in
        free slots at position 0, where the next admission overwrites whatever they wrote."""
        n = int(ids.shape[0])
        bucket = min(self.slots, 1 << (n - 1).bit_length())
        extra = bucket - n
        if not extra:
            return ids, positions
        pad_ids = torch.full((extra, ids.shape[1]), self.geometry.pad, device=ids.device)
        pad_positions = torch.zeros(extra, dtype=positions.dtype, device=positions.device)
        return torch.cat([ids, pad_ids]), torch.cat([positions, pad_positions])

    def fail_all(self, error: BaseException) -> None:
        """A step broke: every active row learns of it and leaves."""
        for row in self.rows:
            row.listener.fail(error)
        self.rows.clear()

    def cancel_all(self) -> None:
        self.rows.clear()

    def _retire(self, leaves: Callable[[Row], bool]) -> None:
        """Drop the rows for which `leaves(row)` holds, keeping the rest packed."""
        i = 0
        while i < len(self.rows):
            row = self.rows[i]
            if not leaves(row):
                i += 1
                continue
            if row.finished:
                row.listener.finish()
            last = len(self.rows) - 1
            if i != last:
                self.cache.move(last, i, self.rows[last].position + 1)
                self.rows[i] = self.rows[last]
            self.rows.pop()
