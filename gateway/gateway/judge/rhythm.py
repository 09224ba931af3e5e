"""Tempo, by librosa's beat tracker, refined to a fraction of a frame.

librosa's tempo estimate is quantised to its onset envelope's frame lag (at a 256-sample hop at
22.05 kHz, 180 BPM falls between 172 and 184), so the beats it tracks are kept and the tempo is
the slope of a straight line through their times: many beats average the quantisation away."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import librosa
import numpy as np
import numpy.typing as npt

HOP = 256
TEMPO_TOLERANCE = 0.04
"""A tempo within 4 % of the one asked is that tempo (a listener hears 120 and 124 as one)."""


class TempoAgreement(StrEnum):
    MATCH = "match"
    DOUBLE = "double"
    """Twice the tempo asked: the same beat counted in eighths (a common, mild miss)."""
    HALF = "half"
    OFF = "off"


@dataclass(frozen=True)
class Tempo:
    bpm: float | None
    """None when there is no steady beat to measure (silence, a drone)."""
    beats: int


def tempo_of(mono: npt.NDArray[np.float32], rate: int) -> Tempo:
    """The piece's tempo from its tracked beats (at least four, else no tempo)."""
    envelope = librosa.onset.onset_strength(y=mono, sr=rate, hop_length=HOP)
    if not np.any(envelope > 0):
        return Tempo(None, 0)
    _, frames = librosa.beat.beat_track(onset_envelope=envelope, sr=rate, hop_length=HOP)
    times = librosa.frames_to_time(frames, sr=rate, hop_length=HOP)
    if len(times) < 4:
        return Tempo(None, len(times))
    period = float(np.polyfit(np.arange(len(times)), times, 1)[0])
    return Tempo(round(60.0 / period, 2), len(times))


def tempo_agreement(measured: float, asked: float) -> TempoAgreement:
    """How the measured tempo stands to the one asked (half and double named as such)."""
    for agreement, factor in (
        (TempoAgreement.MATCH, 1.0),
        (TempoAgreement.DOUBLE, 2.0),
        (TempoAgreement.HALF, 0.5),
    ):
        if abs(measured / (asked * factor) - 1.0) <= TEMPO_TOLERANCE:
            return agreement
    return TempoAgreement.OFF
