"""Rows' audio decoded and handed over off the model thread, in order, without making it wait.

The model thread only decides what a chunk decodes (`Cut`, a snapshot of the codes) and hands
it here with the row's health flag (every logit it sampled from so far finite, a device
tensor). A `Delivery` decodes each chunk with the codec, brings it to the host and gives it to
the row's listener; the row's end (or failure) goes through the same queue, after its audio.
The codec's own host syncs (transformers' EnCodec reads its padding back from the device) and
the copies to the host happen on the delivery thread, on a CUDA stream of its own that waits
for the step that wrote the codes: the model thread enqueues step after step meanwhile.

A row whose logits went non-finite is found out here: it fails alone (`NonFiniteLogits`) and is
marked so that the engine drops it at its next step.

`Delivery(threaded=False)` does the same work at once on the caller's thread: the engine's
tests drive the core step by step and read each chunk as it comes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from composer.codec.streaming import Cut, Decode

logger = logging.getLogger(__name__)


class NonFiniteLogits(RuntimeError):
    """The model produced NaN or infinite logits for this request (its audio would be noise)."""

    def __init__(self) -> None:
        super().__init__("the model produced non-finite logits for this request")


class Listener(Protocol):
    """Where a row's audio goes (a ticket on the event loop, or a test's recorder)."""

    @property
    def cancelled(self) -> bool:
        """True once nobody is waiting for this row any more."""

    def emit(self, samples: npt.NDArray[np.float32]) -> None:
        """New audio: float32 [channels, N]."""

    def finish(self) -> None:
        """All audio was emitted."""

    def fail(self, error: BaseException) -> None:
        """Generation failed; no more audio will come."""


class Receiver(Protocol):
    """What a delivery needs of a row: its listener, and a flag to mark it failed."""

    listener: Listener
    failed: bool


class Delivery:
    """Decodes, copies and hands over rows' chunks, ends and failures, in order."""

    def __init__(self, decode: Decode, device: torch.device, threaded: bool = True) -> None:
        self._decode = decode
        cuda = device.type == "cuda"
        self._stream = torch.cuda.Stream(device) if cuda and threaded else None
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._work, name="delivery", daemon=True)
            self._thread.start()

    def emit(self, row: Receiver, cut: Cut, healthy: torch.Tensor) -> None:
        """Decode `cut` and hand its audio to the row's listener (unless the row went bad)."""
        healthy = healthy.clone()  # the flag as it is now (the slot's flag changes on)
        ready = self._handed_over(cut.codes, healthy)
        self._submit(lambda: self._deliver(row, cut, healthy, ready))

    def finish(self, row: Receiver) -> None:
        self._submit(lambda: None if row.failed else row.listener.finish())

    def fail(self, row: Receiver, error: BaseException) -> None:
        self._submit(lambda: row.listener.fail(error))

    def flush(self) -> None:
        """Wait until everything handed over so far is delivered."""
        if self._jobs is None:
            return
        done = threading.Event()
        self._jobs.put(done.set)
        done.wait()

    def close(self) -> None:
        if self._jobs is not None and self._thread is not None:
            self._jobs.put(None)
            self._thread.join()

    def _handed_over(self, *tensors: torch.Tensor) -> torch.cuda.Event | None:
        """On CUDA: an event after the work that wrote `tensors`, which the delivery stream
        waits for; the tensors are marked in use by that stream (not reused before)."""
        if self._stream is None:
            return None
        event = torch.cuda.Event()
        event.record()
        for tensor in tensors:
            tensor.record_stream(self._stream)
        return event

    def _deliver(self, row: Receiver, cut: Cut, healthy: torch.Tensor, ready: Any) -> None:
        if row.failed or row.listener.cancelled:
            return
        try:
            with torch.inference_mode():
                if self._stream is not None:
                    with torch.cuda.stream(self._stream):
                        self._stream.wait_event(ready)
                        samples, ok = self._to_host(cut, healthy)
                else:
                    samples, ok = self._to_host(cut, healthy)
        except Exception as exc:  # noqa: BLE001 - this row fails; the others go on
            logger.exception("decoding a chunk failed")
            row.failed = True
            row.listener.fail(exc)
            return
        if not ok:
            logger.error("a request's logits were not finite; it fails alone")
            row.failed = True
            row.listener.fail(NonFiniteLogits())
            return
        row.listener.emit(samples)

    def _to_host(self, cut: Cut, healthy: torch.Tensor) -> tuple[npt.NDArray[np.float32], bool]:
        audio = cut.audio(self._decode)
        samples: npt.NDArray[np.float32] = audio.cpu().numpy()
        return samples, bool(healthy.cpu())

    def _submit(self, job: Callable[[], None]) -> None:
        if self._jobs is None:
            job()
        else:
            self._jobs.put(job)

    def _work(self) -> None:
        assert self._jobs is not None
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # noqa: BLE001 - a listener's error must not stop the others
                logger.exception("handing audio over failed")
