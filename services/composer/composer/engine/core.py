"""The engine's step loop, synchronous: admit, prefill, one step over the active rows, retire.

Scheduling is per step, not per batch: a request admitted between two steps is in the next one,
and a row that finishes or is cancelled leaves its slot before the next one (its compute stops
there). Active rows are packed into slots 0 … n-1, so a step runs on the leading rows of the
cache. Threads, queues and the event loop are `runner`'s business; tests drive this directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

from composer.codec.sampling import RowKnobs, draw_noise, host_to_device, sample_rows
from composer.engine.delivery import Delivery, Listener
from composer.engine.musicgen import Condition, MusicgenStepModel
from composer.engine.rows import Geometry, Row
from composer.engine.slots import SlotCache
from composer.generation import GenerationRequest

logger = logging.getLogger(__name__)


class EngineCore:
    """Slots over one `MusicgenStepModel`; `step()` advances every active row by one column.

    A steady-state step reads nothing back from the device: positions are copied up from the
    host (which knows them), the rows are sampled together on the device (`sample_rows`), a
    row's non-finite logits are noted in a device flag that travels with its audio, and audio
    chunks are decoded and copied to the host on the delivery thread (`Delivery`). The host
    enqueues step after step while the device works."""

    def __init__(
        self,
        model: MusicgenStepModel,
        geometry: Geometry,
        slots: int,
        fixed_shapes: bool = False,
        cuda_graphs: bool = False,
        threaded_delivery: bool = False,
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
        self.delivery = Delivery(model.decode, model.device, threaded_delivery)
        """Decodes and hands over the rows' audio (on a thread of its own when serving)."""
        self._finite = torch.ones(slots, dtype=torch.bool, device=model.device)
        """Per slot: every logit its row sampled from so far was finite."""
        self._knobs: tuple[tuple[int, ...], RowKnobs] | None = None
        self._fixed = fixed_shapes or cuda_graphs
        self.cuda_graphs = cuda_graphs
        self._forward = model.step
        if cuda_graphs:
            # One graph per slot bucket, captured in `warm_up`. The cache buffers are static
            # (their addresses never change) so the graph may write them in place; on CUDA a
            # graph that cannot be captured raises instead of silently running uncaptured.
            self.cache.mark_static()
            if model.device.type == "cuda":
                import torch._inductor.config as inductor

                inductor.triton.cudagraph_or_error = True
            # Each bucket is one compile of the same function: dynamo's recompile limit (8 by
            # default) must hold them all, or the largest buckets would silently run eager.
            dynamo = torch._dynamo.config
            dynamo.recompile_limit = max(dynamo.recompile_limit, len(self.buckets) + 4)
            self._forward = torch.compile(model.step, mode="reduce-overhead", dynamic=False)

    @property
    def free_slots(self) -> int:
        return self.slots - len(self.rows)

    @property
    def buckets(self) -> list[int]:
        """The row counts a fixed-shape step pads to: 1, 2, 4, 8 … and `slots` itself."""
        sizes = [1 << i for i in range(self.slots.bit_length()) if 1 << i < self.slots]
        return [*sizes, self.slots]

    def warm_up(self, progress: Callable[[int, float], None] | None = None) -> float:
        """Run the fixed-shape step of every bucket before serving (with CUDA graphs: compile
        and capture each), so no request ever waits for a compile; returns the seconds taken.
        `progress(bucket, seconds)` is told as each bucket is ready. Padding rows at position 0
        of free slots, which every admission overwrites: run it with no row active."""
        if not self._fixed:
            return 0.0
        if self.rows:
            raise RuntimeError("warm up before admitting any request")
        started = time.perf_counter()
        with torch.inference_mode():
            for bucket in self.buckets:
                ids = torch.full(
                    (bucket, self.geometry.codebooks), self.geometry.pad, device=self.model.device
                )
                positions = torch.zeros(bucket, dtype=torch.long, device=self.model.device)
                for _ in range(3):  # cudagraph trees: warm up, record, replay
                    self._run_fixed(ids, positions)
                if self.model.device.type == "cuda":
                    torch.cuda.synchronize(self.model.device)
                if progress is not None:
                    progress(bucket, time.perf_counter() - started)
        return time.perf_counter() - started

    def admit(self, request: GenerationRequest, listener: Listener, condition: Condition) -> Row:
        """Give a request the next free slot; it takes part from the next step on."""
        if not self.free_slots:
            raise RuntimeError("no free slot")
        slot = len(self.rows)
        with torch.inference_mode():
            if condition.text is not None:
                self.cache.set_text(slot, condition.text.keys, condition.text.values)
            self._finite[slot] = True
            row = Row(request, listener, self.geometry, self.delivery, self.model.device, condition)
        self.rows.append(row)
        return row

    def step(self) -> int:
        """Advance every active row by one column; returns how many rows were stepped."""
        with torch.inference_mode():
            return self._step()

    def _step(self) -> int:
        self._retire(lambda row: row.listener.cancelled or row.failed)
        if not self.rows:
            return 0
        self.cache.resize_text(len(self.rows))
        for slot, row in enumerate(self.rows):
            if row.needs_prefill:
                self.model.prefill(self.cache, slot, *row.prefill())
        n = len(self.rows)
        ids = torch.stack([row.next_ids() for row in self.rows])
        at = [row.position for row in self.rows]
        if self._fixed:
            logits = self._run_fixed(*self._padded(ids, at))[:n]
        else:
            keys_until = max(at) + 1
            positions = host_to_device(at, torch.long, self.model.device)
            masked = min(at) != keys_until - 1  # rows at different positions
            logits = self._forward(
                self.cache, ids, positions, keys_until, self.cache.text_tokens, masked
            )
        tokens = self._sample(logits)
        for i, row in enumerate(self.rows):
            row.advance(tokens[i], self._finite[i])
            if row.window_done:
                row.close_window(self._finite[i])
                if row.text_changed:  # a new section: its text from the window's prefill on
                    text = row.section_text()
                    self.cache.set_text(i, text.keys, text.values)
        self._retire(lambda row: row.finished)
        return n

    def _run_fixed(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The fixed-shape step: the whole cache and text buffer, always masked."""
        cache = self.cache
        if self.cuda_graphs:
            # a new iteration: the previous replay's outputs were consumed (sampled) already,
            # so cudagraph trees may reuse their memory rather than checkpoint it
            torch.compiler.cudagraph_mark_step_begin()
        return self._forward(cache, ids, positions, cache.positions, cache.text_capacity, True)

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        """Guide and sample every row at once (each row's noise from its own generator);
        note in each row's flag whether its logits were finite. logits [n, 2, K, V] ->
        tokens [n, K]."""
        n = int(logits.shape[0])
        knobs = self._row_knobs(int(logits.shape[-1]))
        conditional, unconditional = logits[:, 0], logits[:, 1]
        guided = unconditional + knobs.guidance * (conditional - unconditional)
        self._finite[:n].logical_and_(torch.isfinite(guided).flatten(1).all(dim=1))
        noise = torch.empty_like(guided)
        for i, row in enumerate(self.rows):
            draw_noise(guided.shape[1:], row.generator, out=noise[i])
        return sample_rows(guided, knobs, noise)

    def _row_knobs(self, vocab: int) -> RowKnobs:
        """The active rows' sampling knobs on the device, rebuilt only when the rows change."""
        key = tuple(id(row) for row in self.rows)
        if self._knobs is None or self._knobs[0] != key:
            params = [row.request.params for row in self.rows]
            self._knobs = (key, RowKnobs.of(params, vocab, self.model.device))
        return self._knobs[1]

    def _padded(self, ids: torch.Tensor, at: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad the rows up to the slot bucket (1, 2, 4, 8 … up to `slots`): padding rows sit in
        free slots at position 0, where the next admission overwrites whatever they wrote."""
        n = len(at)
        bucket = min(self.slots, 1 << (n - 1).bit_length())
        extra = bucket - n
        positions = host_to_device(at + [0] * extra, torch.long, self.model.device)
        if not extra:
            return ids, positions
        pad_ids = torch.full((extra, ids.shape[1]), self.geometry.pad, device=ids.device)
        return torch.cat([ids, pad_ids]), positions

    def fail_all(self, error: BaseException) -> None:
        """A step broke: every active row learns of it and leaves."""
        for row in self.rows:
            self.delivery.fail(row, error)
        self.rows.clear()

    def cancel_all(self) -> None:
        self.rows.clear()

    def close(self) -> None:
        """Deliver what is under way, then stop the delivery thread."""
        self.delivery.close()

    def _retire(self, leaves: Callable[[Row], bool]) -> None:
        """Drop the rows for which `leaves(row)` holds, keeping the rest packed."""
        i = 0
        while i < len(self.rows):
            row = self.rows[i]
            if not leaves(row):
                i += 1
                continue
            if row.finished:
                self.delivery.finish(row)
            last = len(self.rows) - 1
            if i != last:
                self.cache.move(last, i, self.rows[last].position + 1)
                self._finite[i] = self._finite[last]
                self.rows[i] = self.rows[last]
            self.rows.pop()
