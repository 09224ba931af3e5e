"""A request in sections: the engine swaps the slot's text exactly at each section's first
frame, goes on from its own tail, and leaves the other rows as they would be alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from composer.engine.loader import TransformersBackend
from composer.generation import GenerationParams, GenerationRequest, Section
from tests.composer.test_engine import Recorder, load, request, run, solo

FPS = 50  # the tiny MusicGen's codec: 32 kHz, hop 640


def sectioned(text: str, seconds: float, seed: int, *later: tuple[float, str]) -> GenerationRequest:
    sections = tuple(Section(start, words) for start, words in later)
    return GenerationRequest(
        text, GenerationParams(duration_s=seconds, seed=seed), sections=sections
    )


@pytest.fixture(scope="module")
def mono(tiny_musicgen: Path) -> TransformersBackend:
    return load(tiny_musicgen, window_s=2.0, extend_stride_s=1.0)


def test_the_text_changes_at_each_sections_first_frame(mono: TransformersBackend) -> None:
    r = sectioned("calm pads", 3.0, 4, (0.66, "dark techno"), (1.9, "bright brass fanfare"))
    core = mono.engine(2)
    swaps: list[tuple[int, torch.Tensor]] = []
    set_text = core.cache.set_text
    row = core.admit(r, Recorder(), mono.condition(r))

    def recording(slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        swaps.append((row.done_frames, keys.clone()))
        set_text(slot, keys, values)

    core.cache.set_text = recording  # type: ignore[method-assign]
    assert row.new_frames == 33  # the first window ends on the first section
    while core.rows:
        core.step()
    assert [frames for frames, _ in swaps] == [33, 95]
    for (_, keys), words in zip(swaps, ["dark techno", "bright brass fanfare"], strict=True):
        expected = mono.condition(GenerationRequest(words, r.params)).text
        assert expected is not None and torch.equal(keys, expected.keys)


def test_audio_before_a_section_is_the_same_and_after_it_follows_the_new_text(
    mono: TransformersBackend,
) -> None:
    changed = sectioned("calm pads", 2.0, 8, (1.0, "dark techno"))
    kept = sectioned("calm pads", 2.0, 8, (1.0, "calm pads"))
    a, b = solo(mono, changed), solo(mono, kept)
    assert a.shape == b.shape == (1, 64000)
    boundary = 32000
    lookahead = 4 * 640  # the codec decodes a few frames ahead of what it emits
    np.testing.assert_array_equal(a[:, : boundary - lookahead], b[:, : boundary - lookahead])
    assert not np.array_equal(a[:, boundary + lookahead :], b[:, boundary + lookahead :])


def test_rows_beside_a_sectioned_row_are_as_alone(mono: TransformersBackend) -> None:
    requests = [
        sectioned("calm pads", 2.5, 3, (0.8, "dark techno"), (1.7, "folk guitar")),
        request("lofi beat", 1.5, 5),
        sectioned("sad cello", 1.2, 6, (0.3, "harp glissando")),
    ]
    recs, _ = run(mono, requests, join_at=[0, 7, 20])
    for r, rec in zip(requests, recs, strict=True):
        assert rec.finished
        np.testing.assert_array_equal(rec.audio(), solo(mono, r))
