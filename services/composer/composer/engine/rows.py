"""One request in the engine: its windows, delay pattern, sampler and stream decoder.

A row generates its audio as a series of windows (the first up to `window_s`, then
`extend_stride_s` more each, prompted with the previous window's last codes), each a grid of
token columns in MusicGen's delay pattern: codebook k of frame f sits at column 1 + f + delay[k],
column 0 is the start token (for a melody checkpoint the window's prefix comes first, at
positions 0 … P-1, and column c sits at position P + c). Cells known in advance (the start, the
delays' padding, a prompt's codes) are written when the window opens; the rest (-1) are sampled,
one column per step. Every row has its own window length, position and generator, so rows never
wait for each other.

A request in sections ends a window at each section's first frame and opens the next one,
prompted with its own tail as any continuation, under the next section's text
(`text_changed`: the engine swaps the slot's cross-attention before the window's prefill). So
the description changes exactly at the section's frame, and the music goes on from itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from composer.codec.streaming import LOOKAHEAD_FRAMES, RowDecoder, undelay
from composer.engine.delivery import Delivery, Listener
from composer.engine.musicgen import Condition, TextCondition
from composer.generation import GenerationRequest

SAMPLED = -1


@dataclass(frozen=True)
class Geometry:
    """Frame arithmetic shared by every row of one model and its settings."""

    codebooks: int
    delays: tuple[int, ...]
    pad: int
    hop: int
    sample_rate: int
    window_s: float
    extend_stride_s: float
    chunk_s: float
    decode_context_s: float

    @property
    def max_delay(self) -> int:
        return max(self.delays)

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * self.sample_rate / self.hop))

    @property
    def window_frames(self) -> int:
        return self.frames(self.window_s)

    @property
    def stride_frames(self) -> int:
        return self.frames(self.extend_stride_s)

    @property
    def keep_frames(self) -> int:
        """Codes carried from one window into the next as its prompt."""
        return self.window_frames - self.stride_frames

    @property
    def positions(self) -> int:
        """Cache positions one window's columns need: all but the last (never fed back)."""
        return 1 + self.window_frames + self.max_delay

    def windows(self, seconds: float) -> int:
        """How many windows a request of `seconds` takes."""
        beyond = max(0, self.frames(seconds) - self.window_frames)
        return 1 + -(-beyond // self.stride_frames)

    def window_start(self, window: int) -> int:
        """The frame window `window` starts at (its prompt included)."""
        return window * self.stride_frames


class Row:
    """A request's state from admission to its last audio."""

    def __init__(
        self,
        request: GenerationRequest,
        listener: Listener,
        geometry: Geometry,
        delivery: Delivery,
        device: torch.device,
        condition: Condition | None = None,
    ) -> None:
        self.request = request
        self.listener = listener
        self.failed = False
        """Set by the delivery when the row's logits went non-finite: it leaves at once."""
        self.condition = condition or Condition()
        self.window = 0
        self.offset = self.condition.prefix_length
        """Positions the window's prefix takes before its first column (melody checkpoints)."""
        self._g = geometry
        self._delivery = delivery
        self._device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(request.params.seed)
        self.total_frames = geometry.frames(request.params.duration_s)
        self.boundaries = section_frames(request, geometry, self.total_frames)
        """(first frame, index in `request.sections`) of each later section, ascending;
        `Row.section` counts those passed."""
        self.section = 0
        self.text_changed = False
        self.done_frames = 0
        self.finished = False
        self._open(None, min(geometry.window_frames, self.total_frames, self._to_boundary()))

    def _to_boundary(self) -> int:
        """Frames from here to the next section's start (no end when none is left)."""
        if self.section < len(self.boundaries):
            return self.boundaries[self.section][0] - self.done_frames
        return self.total_frames

    def _open(self, prompt: torch.Tensor | None, new_frames: int) -> None:
        """Start a window of `new_frames` after `prompt` [K, P] (None: the first window)."""
        g = self._g
        p = 0 if prompt is None else int(prompt.shape[-1])
        self.prompt_frames, self.new_frames = p, new_frames
        columns = 1 + p + new_frames + g.max_delay
        self.grid = torch.full((g.codebooks, columns), g.pad, dtype=torch.long, device=self._device)
        for k, delay in enumerate(g.delays):
            first = 1 + delay
            if prompt is not None:
                self.grid[k, first : first + p] = prompt[k]
            self.grid[k, first + p : first + p + new_frames] = SAMPLED
        self.fed = 0
        """Columns in the cache; column `fed` is fed next and column `fed + 1` produced."""
        self.primed = not (p or self.offset)
        """Whether the window's prefix and prompt are in the cache (nothing to feed: at once)."""
        self._chunk = g.frames(g.chunk_s)
        self.decoder = RowDecoder(
            None,
            hop=g.hop,
            chunk=self._chunk,
            context=g.frames(g.decode_context_s),
            lookahead=LOOKAHEAD_FRAMES,
            start=p,
        )

    @property
    def needs_prefill(self) -> bool:
        """A window with a prefix or a prompt feeds them before its first step."""
        return not self.primed

    def prefill(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What a prefill feeds: the window's prefix [2, P, D] (or None) and its prompt's
        columns ids [K, P']; afterwards the row steps from column P'."""
        self.primed = True
        self.fed = self.prompt_frames
        return self.grid[:, : self.prompt_frames], self.condition.prefix(self.window)

    @property
    def position(self) -> int:
        """The cache position of the column fed next."""
        return self.offset + self.fed

    def next_ids(self) -> torch.Tensor:
        """The column to feed this step, ids [K]."""
        return self.grid[:, self.fed]

    @property
    def window_done(self) -> bool:
        return self.fed + 1 == int(self.grid.shape[-1])

    def advance(self, tokens: torch.Tensor, healthy: torch.Tensor) -> None:
        """Write the sampled column, tokens [K] (the pattern's known cells kept), and emit
        whatever audio is complete (to the delivery, which decodes it); `healthy` is the row's
        device flag (all logits finite so far), sent along with each chunk."""
        column = self.fed + 1
        known = self.grid[:, column]
        self.grid[:, column] = torch.where(known == SAMPLED, tokens, known)
        self.fed = column
        if self._complete_frames() - LOOKAHEAD_FRAMES - self.decoder.emitted >= self._chunk:
            cut = self.decoder.next_cut(self._codes(), self._limit)
            if cut is not None:
                self._delivery.emit(self, cut, healthy)

    @property
    def _limit(self) -> int:
        return self.prompt_frames + self.new_frames

    def _complete_frames(self) -> int:
        """Frames of this window whose every codebook is known (prompt included)."""
        return min(self._limit, max(0, self.fed - self._g.max_delay))

    def _codes(self) -> torch.Tensor:
        """The window's complete frames so far, undelayed: codes [K, F]."""
        return undelay(self.grid[None, :, : self.fed + 1], self._g.delays)[0, :, : self._limit]

    def close_window(self, healthy: torch.Tensor) -> None:
        """After a window's last column: flush its audio, then open the next window (prompted
        with this one's tail) or finish."""
        codes = self._codes()
        rest = self.decoder.last_cut(codes, self._limit)
        if rest is not None:
            self._delivery.emit(self, rest, healthy)
        self.done_frames += self.new_frames
        remaining = self.total_frames - self.done_frames
        if remaining <= 0:
            self.finished = True
            return
        tail = codes[:, max(0, self._limit - self._g.keep_frames) : self._limit].clone()
        self.window += 1
        passed = self.section < len(self.boundaries)
        if passed and self.done_frames >= self.boundaries[self.section][0]:
            self.section += 1
            self.text_changed = True
        self._open(tail, min(self._g.stride_frames, remaining, self._to_boundary()))

    def section_text(self) -> TextCondition:
        """The text of the section the row is in (after its first)."""
        self.text_changed = False
        return self.condition.section_texts[self.boundaries[self.section - 1][1]]


def section_frames(
    request: GenerationRequest, geometry: Geometry, total: int
) -> list[tuple[int, int]]:
    """Each later section's first frame (its time to the nearest frame) and its index, strictly
    ascending and inside the audio (a section that rounds onto the one before it, or past the
    end, is dropped: it would last no frame)."""
    found: list[tuple[int, int]] = []
    for index, section in enumerate(request.sections):
        frame = round(section.start_s * geometry.sample_rate / geometry.hop)
        if (found[-1][0] if found else 0) < frame < total:
            found.append((frame, index))
    return found
