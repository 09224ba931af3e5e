"""A `BatchSink` for the batch backends' tests: each row's chunks and when they arrived."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class RecordingSink:
    """Collects each row's chunks and the step at which each chunk arrived."""

    def __init__(self, rows: int, cancel_after_chunks: int | None = None) -> None:
        self.chunks: list[list[npt.NDArray[np.float32]]] = [[] for _ in range(rows)]
        self.arrival_steps: list[int] = []
        self.steps = 0
        self.cancel_after = cancel_after_chunks

    def emit(self, row: int, samples: npt.NDArray[np.float32]) -> None:
        self.chunks[row].append(samples)
        self.arrival_steps.append(self.steps)

    def is_cancelled(self, row: int) -> bool:
        return self.cancel_after is not None and len(self.chunks[row]) >= self.cancel_after

    def progress(self, step: int, total: int) -> None:
        self.steps += 1

    def audio(self, row: int) -> npt.NDArray[np.float32]:
        return np.concatenate(self.chunks[row], axis=1)
