"""The continuous-batching engine on the tiny MusicGens (mono and stereo), driven step by step.

The core is synchronous, so these tests decide exactly when each request joins and leaves and
compare every row with its solo run: same seed, same audio, whoever else shares the steps.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from composer.codec.streaming import undelay
from composer.engine.core import EngineCore
from composer.engine.loader import TransformersBackend
from composer.engine.musicgen import UnsupportedCheckpoint
from composer.generation import BackendOptions, GenerationParams, GenerationRequest
from tests.composer.reference import RowSampler


class Recorder:
    """A row's listener: keeps the chunks and when they came; cancels on request."""

    def __init__(self, cancel_after_chunks: int | None = None) -> None:
        self.chunks: list[npt.NDArray[np.float32]] = []
        self.finished = False
        self.cancel_after = cancel_after_chunks

    @property
    def cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.chunks) >= self.cancel_after

    def emit(self, samples: npt.NDArray[np.float32]) -> None:
        self.chunks.append(samples)

    def finish(self) -> None:
        self.finished = True

    def fail(self, error: BaseException) -> None:
        raise error

    def audio(self) -> npt.NDArray[np.float32]:
        return np.concatenate(self.chunks, axis=1)


def load(model: Path, **overrides: float) -> TransformersBackend:
    return TransformersBackend.load(BackendOptions("transformers", str(model), **overrides))  # type: ignore[arg-type]


def request(text: str, seconds: float, seed: int, **knobs: float) -> GenerationRequest:
    return GenerationRequest(text, GenerationParams(duration_s=seconds, seed=seed, **knobs))  # type: ignore[arg-type]


def run(
    backend: TransformersBackend,
    requests: list[GenerationRequest],
    join_at: list[int] | None = None,
    slots: int = 4,
    recorders: list[Recorder] | None = None,
) -> tuple[list[Recorder], int]:
    """Step an engine until every request is done; request i joins before step join_at[i]."""
    core = backend.engine(slots)
    joins = join_at or [0] * len(requests)
    recs = recorders or [Recorder() for _ in requests]
    steps = 0
    while steps <= max(joins) or core.rows:
        for i, r in enumerate(requests):
            if joins[i] == steps:
                core.admit(r, recs[i], backend.condition(r))
        core.step()
        steps += 1
    return recs, steps


def run_fixed(backend: TransformersBackend, requests: list[GenerationRequest]) -> list[Recorder]:
    """Step `requests` on fixed shapes (4 slots), one joining after each step."""
    core = EngineCore(backend.model, backend.geometry, 4, fixed_shapes=True)
    recs = [Recorder() for _ in requests]
    for i, r in enumerate(requests):
        core.admit(r, recs[i], backend.condition(r))
        core.step()
    while core.rows:
        core.step()
    return recs


def solo(backend: TransformersBackend, r: GenerationRequest) -> npt.NDArray[np.float32]:
    return run(backend, [r])[0][0].audio()


@pytest.fixture(scope="module")
def mono(tiny_musicgen: Path) -> TransformersBackend:
    return load(tiny_musicgen)


@pytest.fixture(scope="module")
def stereo(tiny_stereo_musicgen: Path) -> TransformersBackend:
    return load(tiny_stereo_musicgen, window_s=2.0, extend_stride_s=1.0)


def reference_codes(backend: TransformersBackend, r: GenerationRequest) -> torch.Tensor:
    """What `model.generate` samples for `r` alone (per-row seeded sampler), undelayed."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    model = backend.model.model
    captured: list[torch.Tensor] = []

    def capture(input_ids: torch.Tensor, scores: torch.Tensor, **_: object) -> torch.Tensor:
        captured.append(input_ids.clone())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    k, frames = backend.model.codebooks, backend.geometry.frames(r.params.duration_s)
    inputs = backend.model.tokenize(r.description)
    with torch.inference_mode():
        model.generate(
            **inputs,
            do_sample=False,
            guidance_scale=r.params.guidance,
            max_new_tokens=frames + max(backend.model.delays),
            logits_processor=LogitsProcessorList([RowSampler([r.params], k, "cpu")]),
            stopping_criteria=StoppingCriteriaList([capture]),
        )
    ids = captured[-1].reshape(k, -1)
    return undelay(ids[None], backend.model.delays)[0, :, :frames]


def test_one_request_samples_exactly_what_generate_samples(mono: TransformersBackend) -> None:
    r = request("lofi beat", 1.0, 5)
    core = mono.engine(1)
    rec = Recorder()
    row = core.admit(r, rec, mono.condition(r))
    while core.rows:
        core.step()
    codes = undelay(row.grid[None], mono.model.delays)[0]
    assert torch.equal(codes, reference_codes(mono, r))
    assert rec.finished and rec.audio().shape == (1, 32000)


def test_rows_joining_mid_batch_equal_their_solo_runs(mono: TransformersBackend) -> None:
    requests = [
        request("lofi beat", 1.0, 5),
        request("sad cello", 0.8, 7, temperature=0.8),
        request("epic orchestral soundtrack with soaring strings", 0.5, 9, guidance=5.0, top_k=50),
        request("dark techno", 0.6, 11, top_p=0.9, top_k=0),
    ]
    recs, steps = run(mono, requests, join_at=[0, 10, 13, 30])
    for r, rec in zip(requests, recs, strict=True):
        assert rec.finished
        np.testing.assert_array_equal(rec.audio(), solo(mono, r))
    assert steps < sum(mono.geometry.frames(r.params.duration_s) + 3 for r in requests)


def test_audio_streams_in_chunks_of_exact_length(mono: TransformersBackend) -> None:
    recs, _ = run(mono, [request("lofi beat", 2.2, 1), request("sad cello", 1.0, 2)])
    assert recs[0].audio().shape == (1, 70400)
    assert recs[1].audio().shape == (1, 32000)
    assert len(recs[0].chunks) >= 4
    assert all(chunk.shape[1] == 16000 for chunk in recs[0].chunks[:-1])


def test_a_row_crossing_windows_while_others_step(tiny_musicgen: Path) -> None:
    windowed = load(tiny_musicgen, window_s=2.0, extend_stride_s=1.0)
    long = request("lofi beat", 4.5, 3)  # windows of 2 s, then 1 s more each
    others = [request("folk guitar", 1.5, 4), request("calm pads", 3.0, 6)]
    recs, _ = run(windowed, [long, *others], join_at=[0, 60, 90])
    assert recs[0].audio().shape == (1, 144000)
    for r, rec in zip([long, *others], recs, strict=True):
        np.testing.assert_array_equal(rec.audio(), solo(windowed, r))


def test_a_cancelled_row_leaves_at_the_next_step(mono: TransformersBackend) -> None:
    core = mono.engine(1)
    first, second = Recorder(cancel_after_chunks=1), Recorder()
    drone = request("endless drone", 30.0, 1)
    core.admit(drone, first, mono.condition(drone))
    while not first.cancelled:
        core.step()
    assert core.free_slots == 0
    assert core.step() == 0  # the cancelled row left before computing anything
    assert core.free_slots == 1 and not first.finished
    r = request("sad cello", 0.5, 2)
    core.admit(r, second, mono.condition(r))  # its slot is free at once
    while core.rows:
        core.step()
    np.testing.assert_array_equal(second.audio(), solo(mono, r))


def test_stereo_streams_two_channels_alone_as_batched(stereo: TransformersBackend) -> None:
    assert stereo.channels == 2
    assert stereo.model.delays == [0, 0, 1, 1, 2, 2, 3, 3]
    long = request("wide ambient pads", 3.5, 8)  # crosses a 2 s window
    short = request("stereo drums", 1.0, 9)
    recs, _ = run(stereo, [long, short], join_at=[0, 20])
    assert recs[0].audio().shape == (2, 112000)
    assert recs[1].audio().shape == (2, 32000)
    np.testing.assert_array_equal(recs[0].audio(), solo(stereo, long))
    np.testing.assert_array_equal(recs[1].audio(), solo(stereo, short))
    left, right = recs[0].audio()
    assert not np.array_equal(left, right)  # two streams, not one copied


def test_stereo_matches_generate_for_every_codebook(stereo: TransformersBackend) -> None:
    r = request("wide ambient pads", 1.0, 8)
    core = stereo.engine(1)
    row = core.admit(r, Recorder(), stereo.condition(r))
    while core.rows:
        core.step()
    codes = undelay(row.grid[None], stereo.model.delays)[0]
    assert torch.equal(codes, reference_codes(stereo, r))


def test_no_tensor_lands_on_the_default_device(tiny_musicgen: Path) -> None:
    """The model on one device, torch's default on another (as on a GPU host, where every
    tensor made without `device=` lands on the CPU): nothing may mix them. Two rows at
    different positions, one crossing a window, so masks, prefills and retirement all run."""
    windowed = load(tiny_musicgen, window_s=2.0, extend_stride_s=1.0)
    requests = [request("lofi beat", 2.5, 5), request("sad cello", 0.5, 6)]
    expected = [solo(windowed, r) for r in requests]
    texts = [windowed.condition(r) for r in requests]
    core = windowed.engine(2)
    recs = [Recorder(), Recorder()]
    torch.set_default_device("meta")
    try:
        core.admit(requests[0], recs[0], texts[0])
        for _ in range(5):
            core.step()
        core.admit(requests[1], recs[1], texts[1])
        while core.rows:
            core.step()
    finally:
        torch.set_default_device(None)
    for rec, audio in zip(recs, expected, strict=True):
        np.testing.assert_array_equal(rec.audio(), audio)


def test_a_checkpoint_of_another_kind_is_refused_at_load(
    tmp_path: Path, tiny_musicgen: Path
) -> None:
    config = json.loads((tiny_musicgen / "config.json").read_text())
    config["model_type"] = "bark"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedCheckpoint, match="not a MusicGen checkpoint"):
        load(tmp_path)


def test_a_window_longer_than_the_positions_is_refused(mono: TransformersBackend) -> None:
    too_long = replace(mono.geometry, window_s=mono.model.max_positions / 50)
    with pytest.raises(ValueError, match="COMPOSER_WINDOW_S"):
        EngineCore(mono.model, too_long, 1)


def test_fixed_shapes_give_the_same_audio(tiny_musicgen: Path) -> None:
    """Bucketed slot counts and whole-window reads under masks (for CUDA graphs): the rows of
    3 active requests step padded to 4, and each equals its run on the trimmed path."""
    windowed = load(tiny_musicgen, window_s=2.0, extend_stride_s=1.0)
    requests = [request("lofi beat", 2.5, 3), request("sad cello", 1.0, 4), request("pads", 0.6, 5)]
    for rec, r in zip(run_fixed(windowed, requests), requests, strict=True):
        np.testing.assert_array_equal(rec.audio(), solo(windowed, r))
