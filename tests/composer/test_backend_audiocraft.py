"""The audiocraft backend on a tiny audiocraft checkpoint: the real `MusicGen.get_pretrained`
and token loop, streamed, seeded per row, windowed, cancellable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from composer.backends import load_backend
from composer.generation import BackendOptions, GenerationParams, GenerationRequest
from tests.composer.sinks import RecordingSink


def build_tiny_audiocraft(tmp_path_factory: pytest.TempPathFactory, name: str, *flags: str) -> Path:
    """A tiny audiocraft package (`composer.tiny --kind audiocraft`, its hub entries in the
    session's hub cache), built in a process of its own."""
    out = tmp_path_factory.mktemp("models") / name
    command = ["-m", "composer.tiny", str(out), "--kind", "audiocraft", *flags, "--hub-cache"]
    subprocess.run(
        [sys.executable, *command, os.environ["HF_HUB_CACHE"]], check=True, capture_output=True
    )
    return out


@pytest.fixture(scope="session")
def tiny_audiocraft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_audiocraft(tmp_path_factory, "tiny-audiocraft")


def backend(model: Path, **overrides: float) -> object:
    return load_backend(BackendOptions("audiocraft", str(model), **overrides))  # type: ignore[arg-type]


def request(text: str, seconds: float, seed: int) -> GenerationRequest:
    return GenerationRequest(text, GenerationParams(duration_s=seconds, seed=seed))


def test_loads_through_get_pretrained(tiny_audiocraft: Path) -> None:
    loaded = backend(tiny_audiocraft)
    assert loaded.sample_rate == 32000  # type: ignore[attr-defined]
    assert loaded.samples_for(2.0) == 64000  # type: ignore[attr-defined]
    assert loaded.supports_melody is False  # type: ignore[attr-defined]


def test_exact_lengths_streamed_before_the_end(tiny_audiocraft: Path) -> None:
    sink = RecordingSink(2)
    backend(tiny_audiocraft).generate(  # type: ignore[attr-defined]
        [request("lofi beat", 2.0, 1), request("sad cello", 1.0, 2)], sink
    )
    assert sink.audio(0).shape == (1, 64000)
    assert sink.audio(1).shape == (1, 32000)
    assert len(sink.chunks[0]) >= 3
    assert sink.arrival_steps[0] < sink.steps // 2


def test_a_seed_gives_the_same_audio_alone_or_in_a_batch(tiny_audiocraft: Path) -> None:
    """Within one batch group: audiocraft attends text padding, so the scheduler batches only
    descriptions of one token length (these two are 8 tokens each with the tiny tokenizer)."""
    loaded = backend(tiny_audiocraft)
    group = loaded.batch_group  # type: ignore[attr-defined]
    assert group("epic brass horns") == group("dreamy synthwave") != group("lofi beat")
    alone = RecordingSink(1)
    loaded.generate([request("dreamy synthwave", 1.5, 42)], alone)  # type: ignore[attr-defined]
    batched = RecordingSink(2)
    loaded.generate(  # type: ignore[attr-defined]
        [request("epic brass horns", 1.5, 7), request("dreamy synthwave", 1.5, 42)], batched
    )
    np.testing.assert_array_equal(alone.audio(0), batched.audio(1))


def test_audiocraft_batches_only_equal_durations() -> None:
    """Why the batch scheduler batches only equal durations for audiocraft: its token loop
    pads a row's delay pattern where the batch ends, so a 1 s row beside a 1.5 s one hears
    tokens past its end and its last frames differ from its solo run (seen with this tiny
    checkpoint: a 1 s row beside a 1.5 s one differed from its 45th frame on)."""
    from composer.scheduler import compatible

    assert not compatible(request("a", 1.0, 1), request("b", 1.5, 2))
    assert compatible(request("a", 1.5, 1), request("b", 1.5, 2))


def test_beyond_one_window_and_cancellation(tiny_audiocraft: Path) -> None:
    windowed = backend(tiny_audiocraft, window_s=2.0, extend_stride_s=1.0)
    sink = RecordingSink(1)
    windowed.generate([request("lofi beat", 4.0, 3)], sink)  # type: ignore[attr-defined]
    assert sink.audio(0).shape == (1, 128000)
    cancelled = RecordingSink(1, cancel_after_chunks=1)
    windowed.generate([request("lofi beat", 4.0, 3)], cancelled)  # type: ignore[attr-defined]
    assert len(cancelled.chunks[0]) == 1
    # the model stops too, not only the audio: a first 0.5 s chunk is ~25 of the ~200 steps
    assert cancelled.steps < sink.steps / 4, (cancelled.steps, sink.steps)


def test_row_generators_follow_the_language_models_weights(tiny_audiocraft: Path) -> None:
    """audiocraft's `LMModel` has no `.device`: generators made from it fell back to the CPU,
    and on a GPU `torch.multinomial` refused them at the first sampled token."""
    import torch

    from composer.codec.sampling import module_device

    lm = backend(tiny_audiocraft)._model.lm  # type: ignore[attr-defined]
    assert not hasattr(lm, "device")
    lm.to("meta")
    assert module_device(lm) == torch.device("meta")


def test_the_package_has_the_hubs_layout(tiny_audiocraft: Path) -> None:
    """As `facebook/musicgen-*`: the codec by reference to the transformers EnCodec, and a
    pickled OmegaConf config that torch's default `weights_only` load refuses (the backend
    allows exactly OmegaConf's classes for it; before, a real package could not load)."""
    import pickle

    import torch

    codec = torch.load(tiny_audiocraft / "compression_state_dict.bin")
    assert codec == {"pretrained": "facebook/encodec_32khz"}
    with pytest.raises(pickle.UnpicklingError, match="DictConfig"):
        torch.load(tiny_audiocraft / "state_dict.bin")


@pytest.fixture(scope="session")
def tiny_audiocraft_stereo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_audiocraft(tmp_path_factory, "tiny-audiocraft-stereo", "--stereo")


def test_stereo_streams_two_channels_alone_as_batched(tiny_audiocraft_stereo: Path) -> None:
    loaded = backend(tiny_audiocraft_stereo, window_s=2.0, extend_stride_s=1.0)
    assert loaded.channels == 2  # type: ignore[attr-defined]
    assert loaded._delays == [0, 0, 1, 1, 2, 2, 3, 3]  # type: ignore[attr-defined]
    alone = RecordingSink(1)
    loaded.generate([request("dreamy synthwave", 3.0, 42)], alone)  # type: ignore[attr-defined]
    assert alone.audio(0).shape == (2, 96000)  # crossed the 2 s window
    batched = RecordingSink(2)
    loaded.generate(  # type: ignore[attr-defined]
        [request("epic brass horns", 1.0, 7), request("dreamy synthwave", 3.0, 42)], batched
    )
    np.testing.assert_array_equal(alone.audio(0), batched.audio(1))
    assert not np.array_equal(alone.audio(0)[0], alone.audio(0)[1])
    cancelled = RecordingSink(1, cancel_after_chunks=1)
    loaded.generate([request("lofi beat", 4.0, 3)], cancelled)  # type: ignore[attr-defined]
    assert len(cancelled.chunks[0]) == 1
