"""The muxed video's soundtrack: the original kept, the music ducked under its voices, on
signals whose answers are known (a tone for the voice, noise for the music)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gateway.mix import ATTACK_S, RELEASE_S, _limited, ducking_gain, mixed
from gateway.protocol import KeepOriginal

RATE = 16000
SPANS = [(2.0, 4.0), (6.0, 7.0)]


def level_db(samples: npt.NDArray[np.float32]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64))) + 1e-12))


def signals(seconds: float = 10.0) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    t = np.arange(int(seconds * RATE)) / RATE
    voice = np.zeros_like(t)
    for start, end in SPANS:
        inside = (t >= start) & (t < end)
        voice[inside] = 0.3 * np.sin(2 * np.pi * 440 * t[inside])
    music = np.random.default_rng(0).normal(0, 0.05, t.shape)
    return voice[None].astype(np.float32), music[None].astype(np.float32)


def inside(spans: list[tuple[float, float]], pad: float = 0.0) -> npt.NDArray[np.bool_]:
    t = np.arange(10 * RATE) / RATE
    mask = np.zeros(t.shape, dtype=bool)
    for start, end in spans:
        mask |= (t >= start - pad) & (t < end + pad)
    return mask


def test_the_gain_dips_to_the_depth_under_speech_with_ramps_around_it() -> None:
    gain = ducking_gain(10 * RATE, RATE, SPANS, -12.0)
    db = 20 * np.log10(gain)
    assert np.allclose(db[inside(SPANS)], -12.0, atol=1e-3)
    assert np.allclose(db[~inside(SPANS, pad=max(ATTACK_S, RELEASE_S))], 0.0, atol=1e-3)
    attack = db[int((2.0 - ATTACK_S / 2) * RATE)]
    assert -7 < attack < -5  # halfway down the attack, in dB
    assert np.all(np.diff(db[int(4.0 * RATE) : int((4.0 + RELEASE_S) * RATE)]) >= 0)


def test_speech_keeps_its_level_and_the_music_is_ducked_under_it() -> None:
    voice, music = signals()
    out = mixed(voice, music, RATE, KeepOriginal.SPEECH, SPANS, -12.0)
    assert out.shape == voice.shape
    music_part = out - voice  # what the mix added to the original
    spoken, away = inside(SPANS), ~inside(SPANS, pad=max(ATTACK_S, RELEASE_S))
    assert level_db(music_part[:, away]) - level_db(music_part[:, spoken]) >= 10
    assert abs(level_db(out[:, spoken]) - level_db(voice[:, spoken])) <= 1.0
    assert np.abs(out).max() <= 10 ** (-1 / 20) + 1e-3  # true-peak limited


def test_all_keeps_the_music_whole_and_none_is_the_music_alone() -> None:
    voice, music = signals()
    both = mixed(voice, music, RATE, KeepOriginal.ALL, SPANS, -12.0)
    added = both - voice
    spoken, away = inside(SPANS), ~inside(SPANS, pad=0.5)
    assert abs(level_db(added[:, away]) - level_db(added[:, spoken])) < 1.0
    assert mixed(voice, music, RATE, KeepOriginal.NONE, SPANS, -12.0) is music


def test_the_mix_is_in_sync_with_the_picture_to_the_sample() -> None:
    voice, music = signals()
    quiet = music * np.float32(0.1)
    out = mixed(voice * np.float32(0.1), quiet, RATE, KeepOriginal.ALL, [], -12.0)
    # under the ceiling nothing is limited: the sum comes out exactly where it went in
    matched = out - voice * np.float32(0.1)
    lag = int(np.argmax(np.correlate(matched[0, :4000], quiet[0, :4000], mode="full"))) - 3999
    assert lag == 0


def test_the_limiter_in_chunks_is_the_limiter_whole() -> None:
    from weavewave_common.loudness import limited

    loud = np.random.default_rng(2).normal(0, 0.6, (2, 25 * RATE)).astype(np.float32)
    np.testing.assert_allclose(_limited(loud, RATE), limited(loud, RATE), atol=1e-6)
