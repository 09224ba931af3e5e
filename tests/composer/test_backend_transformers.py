"""The transformers backend on the tiny MusicGen: exact lengths, streaming, seeds, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from composer.backends import BackendOptions, GenerationParams, GenerationRequest, load_backend
from composer.backends.sampling import RowSampler
from composer.backends.transformers import TransformersBackend


class RecordingSink:
    """Collects each row's chunks and the step at which each chunk arrived."""

    def __init__(self, rows: int, cancel_after_chunks: int | None = None) -> None:
        self.chunks: list[list[npt.NDArray[np.float32]]] = [[] for _ in range(rows)]
        self.arrival_steps: list[int] = []
        self.steps = 0
        self.cancel_after = cancel_after_chunks

    def emit(self, row: int, samples: npt.NDArray[np.float32]) -> None:
        self.chunks[row].append(samples)
        self.arrival_steps.append(self.steps)

    def is_cancelled(self, row: int) -> bool:
        return self.cancel_after is not None and len(self.chunks[row]) >= self.cancel_after

    def progress(self, step: int, total: int) -> None:
        self.steps += 1

    def audio(self, row: int) -> npt.NDArray[np.float32]:
        return np.concatenate(self.chunks[row], axis=1)


def backend(model: Path, **overrides: float) -> TransformersBackend:
    loaded = load_backend(BackendOptions("transformers", str(model), **overrides))  # type: ignore[arg-type]
    assert isinstance(loaded, TransformersBackend)
    return loaded


def request(text: str, seconds: float, seed: int, guidance: float = 3.0) -> GenerationRequest:
    return GenerationRequest(
        text, GenerationParams(duration_s=seconds, seed=seed, guidance=guidance)
    )


@pytest.fixture(scope="module")
def tiny(tiny_musicgen: Path) -> TransformersBackend:
    return backend(tiny_musicgen)


def test_each_row_gets_exactly_its_duration(tiny: TransformersBackend) -> None:
    sink = RecordingSink(2)
    tiny.generate([request("lofi beat", 2.0, 1), request("sad cello", 1.0, 2)], sink)
    assert sink.audio(0).shape == (1, 64000)
    assert sink.audio(1).shape == (1, 32000)
    assert tiny.samples_for(2.0) == 64000


def test_chunks_arrive_before_generation_ends(tiny: TransformersBackend) -> None:
    sink = RecordingSink(1)
    tiny.generate([request("lofi beat", 3.0, 1)], sink)
    assert len(sink.chunks[0]) >= 5
    assert sink.arrival_steps[0] < sink.steps // 2
    assert all(chunk.shape[1] == 16000 for chunk in sink.chunks[0][:-1])


def test_a_seed_gives_the_same_audio_alone_or_in_a_batch(tiny: TransformersBackend) -> None:
    alone = RecordingSink(1)
    tiny.generate([request("dreamy synthwave", 2.0, 42)], alone)
    batched = RecordingSink(3)
    tiny.generate(
        [
            request("epic brass", 1.0, 7),
            request("dreamy synthwave", 2.0, 42),
            request("calm pads", 2.0, 9),
        ],
        batched,
    )
    np.testing.assert_array_equal(alone.audio(0), batched.audio(1))
    assert not np.array_equal(batched.audio(1), batched.audio(2))
    shorter = RecordingSink(1)  # its neighbours generate past its end: none of that leaks in
    tiny.generate([request("epic brass", 1.0, 7)], shorter)
    np.testing.assert_array_equal(shorter.audio(0), batched.audio(0))


def test_streamed_audio_matches_a_whole_clip_decode(tiny: TransformersBackend) -> None:
    params = GenerationParams(duration_s=3.0, seed=5)
    sink = RecordingSink(1)
    tiny.generate([GenerationRequest("lofi beat", params)], sink)
    from transformers import LogitsProcessorList

    model, processor = tiny._model, tiny._processor
    inputs = processor(text=["lofi beat"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        whole = model.generate(
            **inputs,
            do_sample=False,
            guidance_scale=3.0,
            max_new_tokens=150 + 3,
            logits_processor=LogitsProcessorList([RowSampler([params], 4, "cpu")]),
        )[0].numpy()
    assert whole.shape == sink.audio(0).shape
    assert np.abs(whole - sink.audio(0)).max() < 1e-4


def test_audio_beyond_one_window_is_continued(tiny_musicgen: Path) -> None:
    windowed = backend(tiny_musicgen, window_s=2.0, extend_stride_s=1.0)
    sink = RecordingSink(2)
    windowed.generate([request("lofi beat", 5.0, 3), request("folk guitar", 3.5, 4)], sink)
    assert sink.audio(0).shape == (1, 160000)
    assert sink.audio(1).shape == (1, 112000)
    assert np.isfinite(sink.audio(0)).all()


def test_cancelled_rows_stop_receiving_audio(tiny: TransformersBackend) -> None:
    sink = RecordingSink(2, cancel_after_chunks=1)
    tiny.generate([request("lofi beat", 3.0, 1), request("techno", 3.0, 2)], sink)
    assert [len(c) for c in sink.chunks] == [1, 1]
    assert sink.steps < 150  # every row cancelled: the batch stopped early
