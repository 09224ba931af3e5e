"""Every measure of one piece of audio, and its agreement with what was asked."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import librosa
import numpy as np
import numpy.typing as npt

from gateway.judge.flaws import CLIPPED_SHARE, clipped_share, is_silent, loop_period, rms_dbfs
from gateway.judge.model import Analysis, Flaws, KeyMeasure, LevelMeasure, TempoMeasure
from gateway.judge.rhythm import Tempo, tempo_agreement, tempo_of
from gateway.judge.score import score, score_parts
from gateway.judge.tonality import KeyEstimate, key_agreement, key_of, parse_key
from gateway.judge.weights import DEFAULT_WEIGHTS
from weavewave_common.loudness import loudness, true_peaks

MIR_RATE = 22050
"""What tempo, key and loops are measured at (librosa's default rate: every feature up to
11 kHz, half the samples of 44.1 kHz)."""


@dataclass(frozen=True)
class Asked:
    tempo_bpm: float | None = None
    key: str | None = None
    duration_s: float | None = None


def measure(
    samples: npt.NDArray[np.float32],
    rate: int,
    asked: Asked,
    weights: dict[str, float] | None = None,
) -> Analysis:
    """`samples` [C, N] at `rate`: tempo, key, level and flaws, each beside what was asked,
    and the score they add up to (`weights`: by default `score.DEFAULT_WEIGHTS`)."""
    started = time.thread_time()
    mono = librosa.resample(samples.mean(axis=0), orig_sr=rate, target_sr=MIR_RATE)
    silent = is_silent(samples)
    duration = samples.shape[1] / rate
    share = clipped_share(samples)
    measured = Analysis(
        duration_s=round(duration, 3),
        asked_duration_s=asked.duration_s,
        duration_error_s=round(duration - asked.duration_s, 3) if asked.duration_s else None,
        tempo=_tempo(mono, silent, asked.tempo_bpm),
        key=_key(mono, silent, asked.key),
        level=_level(samples, rate, silent),
        flaws=Flaws(
            silent=silent,
            clipped=share > CLIPPED_SHARE,
            clipped_share=round(share, 6),
            loop_s=None if silent else loop_period(mono, MIR_RATE),
        ),
        seconds_taken=0.0,
    )
    return measured.model_copy(
        update={
            "score": score(measured, weights or DEFAULT_WEIGHTS),
            "score_parts": score_parts(measured),
            "seconds_taken": round(time.thread_time() - started, 3),
        }
    )


def _tempo(mono: npt.NDArray[np.float32], silent: bool, asked: float | None) -> TempoMeasure:
    tempo = Tempo(None, 0) if silent else tempo_of(mono, MIR_RATE)
    agreement = tempo_agreement(tempo.bpm, asked) if tempo.bpm and asked else None
    return TempoMeasure(bpm=tempo.bpm, beats=tempo.beats, asked_bpm=asked, agreement=agreement)


def _key(mono: npt.NDArray[np.float32], silent: bool, asked: str | None) -> KeyMeasure:
    estimate = KeyEstimate(None, 0.0) if silent else key_of(mono, MIR_RATE)
    wanted = parse_key(asked) if asked else None
    agreement = key_agreement(estimate.key, wanted) if estimate.key and wanted else None
    return KeyMeasure(
        key=str(estimate.key) if estimate.key else None,
        confidence=estimate.confidence,
        asked=str(wanted) if wanted else None,
        agreement=agreement,
    )


def _level(samples: npt.NDArray[np.float32], rate: int, silent: bool) -> LevelMeasure:
    if silent:
        return LevelMeasure(integrated_lufs=None, true_peak_dbtp=None, rms_dbfs=None)
    lufs = loudness(samples, rate)
    peak = float(true_peaks(samples).max())
    return LevelMeasure(
        integrated_lufs=round(lufs, 2) if math.isfinite(lufs) else None,
        true_peak_dbtp=round(20 * math.log10(peak), 2) if peak > 0 else None,
        rms_dbfs=rms_dbfs(samples),
    )
