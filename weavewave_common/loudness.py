"""Level: a true-peak limiter for streams, loudness normalisation for complete answers.

A stream cannot know how loud the whole clip will be, so by default the model's level is kept
and only peaks are stopped: `PeakLimiter` estimates each sample's true peak (4x oversampled, as
ITU-R BS.1770 Annex 2 does), looks `LOOKAHEAD_S` ahead, and lowers a smooth gain just enough
before a peak arrives, recovering over `RELEASE_S`. Audio under the ceiling passes unchanged
(delayed by the look-ahead), and over it the audio is scaled, never waveshaped.

An answer that is complete before it is sent (a muxed video, `normalize=loudness`) is measured
whole (integrated loudness, BS.1770 via pyloudnorm) and brought to `TARGET_LUFS`, then limited
to the same ceiling; the gain is refined once more should the limiter have taken loudness away.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyloudnorm
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import firwin, upfirdn

Audio = npt.NDArray[np.float32]

CEILING_DBTP = -1.0
CEILING = 10 ** (CEILING_DBTP / 20)
LOOKAHEAD_S = 0.005
RELEASE_S = 0.1
TARGET_LUFS = -14.0
OVERSAMPLE = 4
_TAPS = 12 * OVERSAMPLE  # interpolation filter, per BS.1770's 4x true-peak meter
_INTERPOLATOR = firwin(_TAPS, 1 / OVERSAMPLE) * OVERSAMPLE
_MARGIN = _TAPS // OVERSAMPLE // 2 + 1
"""Input samples each side that one sample's interpolated peak depends on."""


def true_peaks(samples: Audio) -> npt.NDArray[np.float64]:
    """Per sample, the largest |value| over channels and the 4x interpolated points around it."""
    upsampled = upfirdn(_INTERPOLATOR, samples.astype(np.float64), up=OVERSAMPLE, axis=1)
    delay = (_TAPS - 1) // 2
    length = samples.shape[1]
    aligned = np.abs(upsampled[:, delay : delay + length * OVERSAMPLE])
    aligned = np.pad(aligned, ((0, 0), (0, length * OVERSAMPLE - aligned.shape[1])))
    per_sample = aligned.reshape(samples.shape[0], length, OVERSAMPLE).max(axis=2)
    peaks: npt.NDArray[np.float64] = np.maximum(per_sample.max(axis=0), np.abs(samples).max(axis=0))
    return peaks


class PeakLimiter:
    """Streaming true-peak limiter: `process` chunks [C, N], then `flush` once at the end.

    Output lags input by `delay` samples; `process` returns what is ready and `flush` the rest,
    so the total length out equals the total length in, and how the input is cut into chunks
    changes nothing."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self._look = max(2, int(LOOKAHEAD_S * sample_rate)) // 2 * 2
        self._half = self._look // 2
        self.delay = self._look + self._half
        self._release = 1.0 - np.exp(-1.0 / (RELEASE_S * sample_rate))
        # silence stands in for the past; `_needed[i]` is the gain sample `_audio[i]` allows
        self._audio = np.zeros((channels, self.delay), np.float32)
        self._needed = np.ones(self.delay)
        self._gain = 1.0

    def process(self, samples: Audio) -> Audio:
        self._audio = np.concatenate([self._audio, samples.astype(np.float32)], axis=1)
        return self._emit()

    def flush(self) -> Audio:
        """The audio still held back by the look-ahead (call once, after the last chunk)."""
        silence = np.zeros((self._audio.shape[0], self.delay + _MARGIN), np.float32)
        self._audio = np.concatenate([self._audio, silence], axis=1)
        return self._emit()

    def _measure(self) -> None:
        """The needs of the samples whose interpolation neighbourhood has arrived."""
        start, stop = self._needed.shape[0], self._audio.shape[1] - _MARGIN
        if stop <= start:
            return
        low = start - _MARGIN
        segment = self._audio[:, max(low, 0) : stop + _MARGIN]
        if low < 0:  # before the first sample: the silence of the past
            segment = np.pad(segment, ((0, 0), (-low, 0)))
        peaks = true_peaks(segment)[_MARGIN : _MARGIN + stop - start]
        needed = np.minimum(1.0, CEILING / np.maximum(peaks, 1e-12))
        self._needed = np.concatenate([self._needed, needed])

    def _emit(self) -> Audio:
        self._measure()
        look, half, context = self._look, self._half, self.delay
        ready = self._needed.shape[0] - 2 * context
        if ready <= 0:
            return np.zeros((self._audio.shape[0], 0), np.float32)
        # the lowest need within +-look of each sample, then averaged over +-half: smooth, and
        # never above the need of any sample it is applied to
        lowest = sliding_window_view(self._needed, 2 * look + 1).min(axis=1)
        smooth = sliding_window_view(lowest, 2 * half + 1).mean(axis=1)[:ready]
        gains = self._released(smooth)
        out = self._audio[:, context : context + ready] * gains.astype(np.float32)
        self._audio = self._audio[:, ready:]  # what is left: the context of what comes next
        self._needed = self._needed[ready:]
        return out

    def _released(self, target: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Follow `target` down at once (it is already smooth), recover up at the release."""
        gains = np.empty_like(target)
        gain, release = self._gain, self._release
        if gain >= 1.0 and target.min() >= 1.0:  # nothing to limit: the common case
            gains.fill(1.0)
            return gains
        for index, wanted in enumerate(target):
            gain = min(wanted, gain + (1.0 - gain) * release)
            gains[index] = gain
        self._gain = gain
        return gains


def limited(samples: Audio, sample_rate: int) -> Audio:
    """`samples` [C, N] through a `PeakLimiter`, whole."""
    limiter = PeakLimiter(sample_rate, samples.shape[0])
    out = np.concatenate([limiter.process(samples), limiter.flush()], axis=1)
    return out


def loudness(samples: Audio, sample_rate: int) -> float:
    """Integrated loudness, LUFS (-inf for silence; nan when under one 400 ms gating block)."""
    if samples.shape[1] < int(0.4 * sample_rate):
        return float("nan")
    meter = pyloudnorm.Meter(sample_rate)
    return float(meter.integrated_loudness(samples.T.astype(np.float64)))


def normalized(samples: Audio, sample_rate: int, target_lufs: float = TARGET_LUFS) -> Audio:
    """The whole clip at `target_lufs`, peaks limited; unchanged (but limited) when it is
    silent or too short to measure."""
    measured = loudness(samples, sample_rate)
    if not np.isfinite(measured):
        return limited(samples, sample_rate)
    gain = 10 ** ((target_lufs - measured) / 20)
    out = limited(samples * np.float32(gain), sample_rate)
    after = loudness(out, sample_rate)
    if np.isfinite(after) and abs(after - target_lufs) > 0.1:  # the limiter took some away
        gain *= 10 ** ((target_lufs - after) / 20)
        out = limited(samples * np.float32(gain), sample_rate)
    return out.astype(np.float32, copy=False)
