"""What both MusicGen backends share: frame arithmetic, the window loop, per-step streaming.

A backend generates a batch as a series of windows (the first up to `window_s`, then
`extend_stride_s` more each, prompted with the previous window's last codes). During a window it
only has to hand every step's codes to `Window.step` and the final codes to `Window.finish`;
emitting chunks, stopping when every row is cancelled and carrying tails over are done here.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from composer.codec.streaming import LOOKAHEAD_FRAMES, RowDecoder
from composer.generation import BackendOptions, BatchSink, GenerationRequest, PlainModel

logger = logging.getLogger(__name__)


class BatchCancelled(Exception):
    """Raised from a step to end the window when nobody is waiting for any row."""


@dataclass
class RowState:
    """One request's progress across generation windows (audiocraft's windowed passes)."""

    index: int
    request: GenerationRequest
    total_frames: int
    done_frames: int = 0
    tail: torch.Tensor | None = None
    """The last codes generated [K, F]: the prompt of the next window."""
    finished: bool = False
    decoder: RowDecoder | None = field(default=None, repr=False)

    def limit(self, prompt_frames: int, new_frames: int) -> int:
        """The last frame (exclusive) of this window that belongs to this row."""
        return prompt_frames + min(new_frames, self.total_frames - self.done_frames)

    def finish_window(
        self, sink: BatchSink, codes: torch.Tensor, prompt_frames: int, new_frames: int, keep: int
    ) -> None:
        """Flush the window's remaining audio from its final codes [K, F]; keep the tail."""
        if sink.is_cancelled(self.index):
            self.finished = True
            return
        assert self.decoder is not None
        limit = self.limit(prompt_frames, new_frames)
        rest = self.decoder.finish(codes, limit)
        if rest is not None:
            sink.emit(self.index, rest)
        self.done_frames += limit - prompt_frames
        self.finished = self.done_frames >= self.total_frames
        self.tail = codes[:, max(0, limit - keep) : limit].clone()


@dataclass
class Window:
    """One generation pass over the rows still active."""

    rows: list[RowState]
    prompt: torch.Tensor | None
    """The previous window's last codes [B, K, P], or None for the first window."""
    new_frames: int

    @property
    def prompt_frames(self) -> int:
        return 0 if self.prompt is None else int(self.prompt.shape[-1])

    def step(self, sink: BatchSink, codes: torch.Tensor) -> None:
        """After a generation step: emit each live row's finished chunk (codes [B, K, F])."""
        live = 0
        for i, row in enumerate(self.rows):
            if sink.is_cancelled(row.index):
                continue
            live += 1
            assert row.decoder is not None
            chunk = row.decoder.update(codes[i], row.limit(self.prompt_frames, self.new_frames))
            if chunk is not None:
                sink.emit(row.index, chunk)
        if live == 0:
            raise BatchCancelled

    def finish(self, sink: BatchSink, codes: torch.Tensor, keep: int) -> None:
        """After the pass: flush every row from the final codes [B, K, F], keep the tails."""
        for i, row in enumerate(self.rows):
            row.finish_window(sink, codes[i], self.prompt_frames, self.new_frames, keep)


class WindowedBackend(PlainModel, ABC):
    """The window loop of a `MusicBackend`; subclasses run one window on their model."""

    def __init__(self, options: BackendOptions, sample_rate: int, hop: int, codebooks: int) -> None:
        self._options = options
        self._sample_rate = sample_rate
        self._hop = hop
        self._frame_rate = sample_rate / hop
        self._codebooks = codebooks

    @property
    def name(self) -> str:
        return self._options.model

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * self._frame_rate))

    def samples_for(self, seconds: float) -> int:
        return self.frames(seconds) * self._hop

    def batch_group(self, description: str) -> int | None:
        return None

    @property
    def keep_frames(self) -> int:
        """Codes carried from one window into the next as its prompt."""
        return self.frames(self._options.window_s - self._options.extend_stride_s)

    @abstractmethod
    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, F] -> audio [C, F * hop]."""

    @abstractmethod
    def _run(self, window: Window, sink: BatchSink) -> None:
        """Generate one window, calling `window.step` after every step and `window.finish`."""

    def generate(self, batch: list[GenerationRequest], sink: BatchSink) -> None:
        rows = [RowState(i, r, self.frames(r.params.duration_s)) for i, r in enumerate(batch)]
        first = True
        with torch.inference_mode():
            while active := [r for r in rows if not (r.finished or sink.is_cancelled(r.index))]:
                try:
                    self._run(self._plan(active, first), sink)
                except BatchCancelled:
                    logger.info("every row of the batch was cancelled; generation stopped")
                    return
                first = False

    def _plan(self, rows: list[RowState], first: bool) -> Window:
        o = self._options
        budget = self.frames(o.window_s if first else o.extend_stride_s)
        new_frames = min(budget, max(r.total_frames - r.done_frames for r in rows))
        prompt = None if first else torch.stack([r.tail for r in rows if r.tail is not None])
        window = Window(rows, prompt, new_frames)
        for row in rows:
            row.decoder = RowDecoder(
                self._decode,
                hop=self._hop,
                chunk=self.frames(o.chunk_s),
                context=self.frames(o.decode_context_s),
                lookahead=LOOKAHEAD_FRAMES,
                start=window.prompt_frames,
            )
        return window
