"""The judge as the gateway runs it: measures in worker threads, a few at a time.

It lives in the gateway rather than a service of its own: it needs CPU and no GPU, the
audio it judges passes through the gateway anyway (uploads, jobs' files), and librosa's
work is numpy and numba, which let the event loop run while a thread measures. The threads
are capped (`GATEWAY_JUDGE_THREADS`) so measuring never takes the cores streaming needs."""

from __future__ import annotations

from typing import BinaryIO

import anyio
from anyio import CapacityLimiter

from gateway import metrics
from gateway.judge.measure import Asked, measure
from gateway.judge.model import Analysis
from weavewave_common.audio import decode_audio
from weavewave_common.errors import PayloadTooLarge

JUDGE_RATE = 44100
"""What the audio is decoded to: loudness and true peak at a music rate, stereo kept."""


class Judge:
    def __init__(
        self, threads: int, max_seconds: float, weights: dict[str, float] | None = None
    ) -> None:
        self._threads = CapacityLimiter(threads)
        self.max_seconds = max_seconds
        self._weights = weights

    async def analyze(self, file: BinaryIO, filename: str | None, asked: Asked) -> Analysis:
        """Decode `file` (at most `max_seconds`, else 413) and measure it."""
        return await anyio.to_thread.run_sync(
            self._analyze, file, filename, asked, limiter=self._threads
        )

    def _analyze(self, file: BinaryIO, filename: str | None, asked: Asked) -> Analysis:
        decoded = decode_audio(file, filename, JUDGE_RATE, self.max_seconds, stereo=True)
        if decoded.truncated:
            raise PayloadTooLarge(
                f"audio: longer than the {self.max_seconds:.0f} s the judge measures.",
                code="audio_too_long",
            )
        analysis = measure(decoded.samples, decoded.sample_rate, asked, self._weights)
        metrics.JUDGE_SECONDS.observe(analysis.seconds_taken)
        metrics.JUDGED_AUDIO_SECONDS.inc(analysis.duration_s)
        return analysis
