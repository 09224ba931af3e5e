"""Levels: the streaming true-peak limiter keeps dynamics; complete clips meet -14 LUFS."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from weavewave_common.loudness import (
    CEILING,
    TARGET_LUFS,
    PeakLimiter,
    loudness,
    normalized,
    true_peaks,
)

RATE = 32000


def music(seconds: float, amplitude: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """Chords with a beat: several partials under a pulsing envelope, stereo [2, N]."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    notes = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220, 277, 330, 440, 554))
    pulse = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 2 * t))
    mono = notes * pulse
    mono = amplitude * mono / np.abs(mono).max()
    return np.stack([mono, 0.8 * mono]).astype(np.float32)


def streamed(samples: npt.NDArray[np.float32], chunk: int = RATE // 2) -> npt.NDArray[np.float32]:
    limiter = PeakLimiter(RATE, samples.shape[0])
    parts = [limiter.process(samples[:, i : i + chunk]) for i in range(0, samples.shape[1], chunk)]
    return np.concatenate([*parts, limiter.flush()], axis=1)


def test_a_quiet_intro_leaves_the_loud_part_as_it_was() -> None:
    """The old fixed gain from the first 0.5 s lifted a quiet intro and then crushed the loud
    part through a waveshaper; now audio under the ceiling comes out exactly as it went in."""
    clip = np.concatenate([music(2, 0.01), music(4, 0.7, seed=1)], axis=1)
    out = streamed(clip)
    assert out.shape == clip.shape  # nothing lost to the look-ahead
    np.testing.assert_allclose(out, clip, atol=1e-6)


def test_peaks_over_the_ceiling_are_scaled_by_a_smooth_gain_not_waveshaped() -> None:
    clip = np.concatenate([music(2, 0.05), music(3, 1.6, seed=2), music(1, 0.3)], axis=1)
    out = streamed(clip)
    assert true_peaks(out).max() <= CEILING * 1.01
    audible = np.abs(clip[0]) > 0.05
    gain = np.where(audible, out[0] / np.where(audible, clip[0], 1), np.nan)
    assert np.nanmin(gain) > 0 and np.nanmax(gain) <= 1 + 1e-6  # scaled, never inverted/lifted
    # a waveshaper's "gain" swings within each cycle; a limiter's moves slowly
    assert np.nanmax(np.abs(np.diff(gain))) < 0.01
    np.testing.assert_allclose(out[:, -RATE // 10 :], clip[:, -RATE // 10 :], atol=1e-4)  # released


def test_chunking_does_not_change_the_result() -> None:
    clip = np.concatenate([music(1, 0.2), music(2, 1.4, seed=3)], axis=1)
    np.testing.assert_allclose(streamed(clip, 16000), streamed(clip, 777), atol=1e-6)


@pytest.mark.parametrize("amplitude", [0.02, 0.3, 1.5])
def test_a_complete_clip_is_normalised_to_the_target_loudness(amplitude: float) -> None:
    clip = np.concatenate([music(2, amplitude / 20), music(6, amplitude, seed=4)], axis=1)
    out = normalized(clip, RATE)
    assert out.shape == clip.shape
    assert loudness(out, RATE) == pytest.approx(TARGET_LUFS, abs=0.5)
    assert true_peaks(out).max() <= CEILING * 1.01


def test_silence_and_very_short_clips_are_left_at_their_level() -> None:
    silent = np.zeros((2, RATE), np.float32)
    np.testing.assert_array_equal(normalized(silent, RATE), silent)
    short = music(0.2, 0.1)
    np.testing.assert_allclose(normalized(short, RATE), short, atol=1e-6)
