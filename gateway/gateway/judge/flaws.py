"""What is wrong with a take whatever was asked: silence, clipping, a stuck loop."""

from __future__ import annotations

import librosa
import numpy as np
import numpy.typing as npt

SILENCE_DBFS = -60.0
"""A take whose RMS level stays under this (about the noise floor of a quiet room recording)
is silent."""
CLIP_LEVEL = 0.999
CLIPPED_SHARE = 0.001
"""A take with more than one sample in a thousand at full scale was clipped."""
LOOP_SIMILARITY = 0.9
LOOP_LAGS_S = (0.5, 8.0)
LOOP_SHARE = 0.8
"""A stuck loop: some lag between half a second and eight whose frames match the frames that
lag earlier (cosine similarity of their spectral changes over `LOOP_SIMILARITY`) over
`LOOP_SHARE` of the take; music that repeats a bar varies more than that, a generator stuck
repeating its last seconds does not."""
STILL_DB = 1.0
"""A frame within this of the take's average spectrum (RMS over the mel bands, dB) is still."""
HOP = 512


def rms_dbfs(samples: npt.NDArray[np.float32]) -> float:
    level = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return round(20 * np.log10(level), 2) if level > 0 else float("-inf")


def is_silent(samples: npt.NDArray[np.float32]) -> bool:
    return rms_dbfs(samples) < SILENCE_DBFS


def clipped_share(samples: npt.NDArray[np.float32]) -> float:
    """The share of samples at full scale (on any channel)."""
    if samples.size == 0:
        return 0.0
    return float(np.mean(np.abs(samples) >= CLIP_LEVEL))


def loop_period(mono: npt.NDArray[np.float32], rate: int) -> float | None:
    """The period (seconds) of a stuck loop, or None: the shortest lag in `LOOP_LAGS_S` at
    which the take's log-mel spectrum, less each band's average, matches itself that lag
    earlier (see `LOOP_SIMILARITY`). Taking the average away leaves how the sound changes, so
    a steady noise or drone, which never changes, is not a loop, and a loop of it is."""
    mel = librosa.feature.melspectrogram(y=mono, sr=rate, n_fft=4096, hop_length=HOP, n_mels=64)
    changes = librosa.power_to_db(mel, ref=np.max, top_db=80.0)
    changes = (changes - changes.mean(axis=1, keepdims=True)).T  # frames x bands
    frames_per_s = rate / HOP
    low, high = (int(round(s * frames_per_s)) for s in LOOP_LAGS_S)
    if len(changes) < 2 * low:
        return None
    norms = np.linalg.norm(changes, axis=1)
    moving = norms >= STILL_DB * np.sqrt(changes.shape[1])
    if np.mean(moving) < LOOP_SHARE:
        return None  # a sound that hardly changes (a drone, steady noise) loops nothing
    unit = changes / np.maximum(norms[:, None], 1e-9)
    for lag in range(low, min(high, len(changes) // 2) + 1):
        similarity = np.einsum("ij,ij->i", unit[lag:], unit[:-lag])
        repeated = (similarity >= LOOP_SIMILARITY) & moving[lag:] & moving[:-lag]
        if np.mean(repeated) >= LOOP_SHARE:
            return round(lag / frames_per_s, 3)
    return None
