"""Where people speak in a video's soundtrack: Silero VAD, whose model ships inside its package
(no download, runs offline), on the soundtrack decoded mono at 16 kHz.

Silero is a small neural detector trained on speech over noise and music, which is what a
video's soundtrack is; an energy or GMM detector (WebRTC's) fires on music as readily as on
voices, and the point here is to duck music under voices only. The spans found are padded a
little and merged when close, so one sentence with pauses is one span, and their number is
capped (a soundtrack of ten thousand blips is not a ten-thousand-item brief).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
MERGE_GAP_S = 0.5
"""Speech spans closer than this are one span (the pauses of one sentence)."""
MAX_SPANS = 200

_model: Any = None
_lock = threading.Lock()
"""Silero's model keeps state between chunks: one detection at a time per process."""


def _loaded() -> Any:
    global _model
    if _model is None:
        from silero_vad import load_silero_vad

        _model = load_silero_vad()
    return _model


def speech_spans(samples: npt.NDArray[np.float32]) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in mono 16 kHz `samples`, merged, at most `MAX_SPANS`."""
    import torch
    from silero_vad import get_speech_timestamps

    if samples.size < SAMPLE_RATE // 10:
        return []
    with _lock, torch.inference_mode():
        found = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)),
            _loaded(),
            sampling_rate=SAMPLE_RATE,
            return_seconds=True,
        )
    spans: list[tuple[float, float]] = []
    for item in found:
        start, end = float(item["start"]), float(item["end"])
        if spans and start - spans[-1][1] < MERGE_GAP_S:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    while len(spans) > MAX_SPANS:  # close the smallest gap until few enough
        gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
        i = int(np.argmin(gaps))
        spans[i : i + 2] = [(spans[i][0], spans[i + 1][1])]
    return [(round(a, 3), round(b, 3)) for a, b in spans]
