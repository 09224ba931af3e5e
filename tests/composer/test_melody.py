"""Melody conditioning on the tiny musicgen-melody checkpoint (audiocraft backend): the real
chroma conditioner, with demucs' real stem separator loaded from the hub cache, in-process and
through the service as a real process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from composer.backends import load_backend
from composer.generation import (
    BackendOptions,
    GenerationParams,
    GenerationRequest,
    Melody,
    MusicBackend,
)
from tests.composer.conftest import serve_composer
from tests.composer.sinks import RecordingSink
from tests.media_factory import wav_bytes
from tooling.supervise import RunningService

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


@pytest.fixture(scope="session")
def tiny_melody_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny-musicgen-melody"
    hub_cache = os.environ["HF_HUB_CACHE"]
    command = ["-m", "composer.tiny", str(out), "--kind", "audiocraft", "--melody"]
    command += ["--hub-cache", hub_cache]
    subprocess.run([sys.executable, *command], check=True, capture_output=True)
    return out


@pytest.mark.slow
def test_the_melody_build_is_byte_identical(tiny_melody_model: Path, tmp_path: Path) -> None:
    hub_cache = Path(os.environ["HF_HUB_CACHE"])
    demucs = hub_cache / "models--adefossez--HTDemucs" / "snapshots"
    before = {p.name: p.read_bytes() for p in sorted(demucs.rglob("*.*"))}
    again = tmp_path / "again"
    command = [
        "-m",
        "composer.tiny",
        str(again),
        "--kind",
        "audiocraft",
        "--melody",
        "--hub-cache",
        str(hub_cache),
    ]
    subprocess.run([sys.executable, *command], check=True, capture_output=True)
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        assert (again / name).read_bytes() == (tiny_melody_model / name).read_bytes()
    assert {p.name: p.read_bytes() for p in sorted(demucs.rglob("*.*"))} == before
    assert set(before) == {"htdemucs.yaml", "955717e8.safetensors"}


@pytest.fixture(scope="module")
def melody_backend(tiny_melody_model: Path) -> MusicBackend:
    return load_backend(BackendOptions("audiocraft", str(tiny_melody_model)))


def tone(freqs: list[float], seconds: float, rate: int = 22050) -> Melody:
    """A melody: the given notes one after another, each for an equal share of `seconds`."""
    t = np.arange(int(seconds * rate / len(freqs))) / rate
    notes = [0.5 * np.sin(2 * np.pi * f * t) for f in freqs]
    return Melody(np.concatenate(notes).astype(np.float32), rate)


def generate(
    backend: MusicBackend, rows: list[tuple[float, int, Melody | None]]
) -> list[npt.NDArray[np.float32]]:
    requests = [  # one description: one batch group (see test_backend_audiocraft)
        GenerationRequest("folk guitar", GenerationParams(duration_s=s, seed=seed), melody)
        for s, seed, melody in rows
    ]
    sink = RecordingSink(len(requests))
    backend.generate(requests, sink)
    return [sink.audio(i) for i in range(len(requests))]


def test_the_melody_checkpoint_takes_a_melody(melody_backend: MusicBackend) -> None:
    assert melody_backend.supports_melody is True


def test_the_melody_steers_the_music(melody_backend: MusicBackend) -> None:
    rising, falling = tone([262, 330, 392, 523], 2.0), tone([523, 392, 330, 262], 2.0)
    with_rising, again, with_falling, without = (
        generate(melody_backend, [(1.5, 11, melody)])[0]
        for melody in (rising, rising, falling, None)
    )
    assert with_rising.shape == (1, 48000)
    np.testing.assert_array_equal(with_rising, again)  # seeded: the melody path is deterministic
    assert not np.array_equal(with_rising, with_falling)
    assert not np.array_equal(with_rising, without)


def test_a_melody_row_is_the_same_alone_or_batched(melody_backend: MusicBackend) -> None:
    rising, falling = tone([262, 330, 392, 523], 2.0), tone([523, 392, 330, 262], 2.0)
    alone = generate(melody_backend, [(1.0, 5, rising)])[0]
    # Equal durations: audiocraft batches only those (see test_audiocraft_batches_only_...).
    batched = generate(melody_backend, [(1.0, 9, falling), (1.0, 5, rising)])
    np.testing.assert_array_equal(alone, batched[1])
    assert not np.array_equal(batched[0], batched[1])


def test_a_short_melody_loops_across_continuation_windows(tiny_melody_model: Path) -> None:
    windowed = load_backend(
        BackendOptions("audiocraft", str(tiny_melody_model), window_s=2.0, extend_stride_s=1.0)
    )
    (audio,) = generate(windowed, [(3.5, 3, tone([440, 660], 0.8))])
    assert audio.shape == (1, 112000)
    assert np.isfinite(audio).all()


@pytest.fixture(scope="module")
def melody_composer(
    tiny_melody_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with serve_composer("audiocraft", tiny_melody_model, tmp_path_factory) as service:
        yield service


def test_the_service_composes_to_an_uploaded_melody(melody_composer: RunningService) -> None:
    url = f"{melody_composer.url}/v1/compose"
    data = {"description": "folk guitar", "duration": "2", "format": "wav", "seed": "4"}
    models = httpx.get(f"{melody_composer.url}/v1/models").json()["models"]
    assert models[0]["supports_melody"] is True

    hum = {"melody": ("hum.wav", wav_bytes(1.5, freq=330.0), "audio/wav")}
    response = httpx.post(url, data=data, files=hum, timeout=120)
    assert response.status_code == 200, response.text
    with av.open(io.BytesIO(response.content), mode="r") as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert samples == 2 * 32000
    other_hum = {"melody": ("hum.wav", wav_bytes(1.5, freq=523.0), "audio/wav")}
    other = httpx.post(url, data=data, files=other_hum, timeout=120)
    assert other.status_code == 200 and other.content != response.content

    not_audio = {"melody": ("hum.wav", b"this is not audio at all", "audio/wav")}
    rejected = httpx.post(url, data=data, files=not_audio, timeout=30)
    assert rejected.status_code in (415, 422), rejected.text
    assert rejected.json()["error"]["code"]
    assert httpx.get(f"{melody_composer.url}/readyz").status_code == 200
