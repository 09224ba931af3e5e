"""Melody checkpoints in the continuous-batching engine (transformers' MusicGen-melody layout).

The condition is a prefix (projected chroma, then text) before the token columns, a per-window
prefix for rows beyond one window; rows with and without a melody, joining at different steps
and crossing windows, share steps and each equals its solo run. The reference is `generate`
itself, given the same chroma as `input_features`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import torch

from composer.codec.streaming import undelay
from composer.engine.loader import TransformersBackend
from composer.generation import GenerationParams, GenerationRequest, Melody
from tests.composer.conftest import serve_composer
from tests.composer.reference import RowSampler
from tests.composer.test_engine import Recorder, load, run, run_fixed, solo
from tests.media_factory import wav_bytes
from tooling.supervise import RunningService

pytestmark = pytest.mark.timeout(300)


def tone(freqs: list[float], seconds: float, rate: int = 22050) -> Melody:
    """The given notes one after another, each for an equal share of `seconds`."""
    t = np.arange(int(seconds * rate / len(freqs))) / rate
    notes = [0.5 * np.sin(2 * np.pi * f * t) for f in freqs]
    return Melody(np.concatenate(notes).astype(np.float32), rate)


RISING = tone([262, 330, 392, 523], 2.0)
FALLING = tone([523, 392, 330, 262], 2.0)


def sung(text: str, seconds: float, seed: int, melody: Melody | None) -> GenerationRequest:
    return GenerationRequest(text, GenerationParams(duration_s=seconds, seed=seed), melody)


@pytest.fixture(scope="module")
def melody(tiny_transformers_melody: Path) -> TransformersBackend:
    return load(tiny_transformers_melody, window_s=2.0, extend_stride_s=1.0)


def generated_codes(backend: TransformersBackend, r: GenerationRequest) -> torch.Tensor:
    """What `generate` samples for `r` alone, given the chroma the engine heard."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    captured: list[torch.Tensor] = []

    def capture(input_ids: torch.Tensor, scores: torch.Tensor, **_: object) -> torch.Tensor:
        captured.append(input_ids.clone())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    model = backend.model
    k, frames = model.codebooks, backend.geometry.frames(r.params.duration_s)
    extra = {}
    if r.melody is not None:
        (chroma,) = backend.condition._window_chromas(r.melody, r.params.duration_s)
        assert chroma is not None
        extra["input_features"] = chroma[None]
    with torch.inference_mode():
        model.model.generate(
            **model.tokenize(r.description),
            **extra,
            do_sample=False,
            guidance_scale=r.params.guidance,
            max_new_tokens=frames + max(model.delays),
            logits_processor=LogitsProcessorList([RowSampler([r.params], k, "cpu")]),
            stopping_criteria=StoppingCriteriaList([capture]),
        )
    ids = captured[-1].reshape(k, -1)
    return undelay(ids[None], model.delays)[0, :, :frames]


def engine_codes(backend: TransformersBackend, r: GenerationRequest) -> torch.Tensor:
    core = backend.engine(1)
    row = core.admit(r, Recorder(), backend.condition(r))
    while core.rows:
        core.step()
    return undelay(row.grid[None], backend.model.delays)[0]


@pytest.mark.parametrize("clip", [RISING, None], ids=["melody", "no-melody"])
def test_a_melody_row_samples_exactly_what_generate_samples(
    melody: TransformersBackend, clip: Melody | None
) -> None:
    assert melody.supports_melody and melody.model.chroma_length == 235
    r = sung("folk guitar", 1.5, 11, clip)
    assert torch.equal(engine_codes(melody, r), generated_codes(melody, r))


def test_the_melody_steers_the_music(melody: TransformersBackend) -> None:
    rising, again, falling, without = (
        solo(melody, sung("folk guitar", 1.5, 11, clip)) for clip in (RISING, RISING, FALLING, None)
    )
    assert rising.shape == (1, 48000)
    np.testing.assert_array_equal(rising, again)
    assert not np.array_equal(rising, falling)
    assert not np.array_equal(rising, without)


def test_melody_rows_joining_and_crossing_windows_equal_their_solo_runs(
    melody: TransformersBackend,
) -> None:
    """A 3.5 s row crosses two 2 s windows (each window hears the looped melody from its own
    start) while a row without a melody and a shorter melody row join later."""
    requests = [
        sung("folk guitar", 3.5, 3, tone([440, 660], 0.8)),
        sung("sad cello", 1.0, 4, None),
        sung("calm pads", 1.5, 5, FALLING),
    ]
    recs, _ = run(melody, requests, join_at=[0, 30, 70])
    assert recs[0].audio().shape == (1, 112000)
    for r, rec in zip(requests, recs, strict=True):
        np.testing.assert_array_equal(rec.audio(), solo(melody, r))
    windows = melody.condition(requests[0]).prefixes
    assert len(windows) == 3 and not torch.equal(windows[0], windows[1])


def test_fixed_shapes_give_the_same_melody_audio(melody: TransformersBackend) -> None:
    requests = [sung("folk guitar", 2.5, 3, RISING), sung("sad cello", 1.0, 4, None)]
    for rec, r in zip(run_fixed(melody, requests), requests, strict=True):
        np.testing.assert_array_equal(rec.audio(), solo(melody, r))


def test_a_stereo_melody_checkpoint_streams_two_channels(tmp_path: Path) -> None:
    from composer.tiny.musicgen import build

    model = build(tmp_path / "stereo-melody", stereo=True, melody=True)
    stereo = load(model, window_s=2.0, extend_stride_s=1.0)
    assert stereo.channels == 2 and stereo.supports_melody
    long, short = sung("wide pads", 2.5, 8, RISING), sung("drums", 1.0, 9, FALLING)
    recs, _ = run(stereo, [long, short], join_at=[0, 20])
    assert recs[0].audio().shape == (2, 80000)
    np.testing.assert_array_equal(recs[0].audio(), solo(stereo, long))
    np.testing.assert_array_equal(recs[1].audio(), solo(stereo, short))
    assert torch.equal(engine_codes(stereo, short), generated_codes(stereo, short))


@pytest.fixture(scope="module")
def melody_engine_composer(
    tiny_transformers_melody: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with serve_composer("transformers", tiny_transformers_melody, tmp_path_factory) as service:
        yield service


def test_the_engine_service_composes_to_an_uploaded_melody(
    melody_engine_composer: RunningService,
) -> None:
    url = f"{melody_engine_composer.url}/v1/compose"
    models = httpx.get(f"{melody_engine_composer.url}/v1/models").json()["models"]
    assert models[0]["supports_melody"] is True
    data = {"description": "folk guitar", "duration": "2", "format": "wav", "seed": "4"}

    def compose(freq: float | None) -> bytes:
        files = {"melody": ("hum.wav", wav_bytes(1.5, freq=freq), "audio/wav")} if freq else None
        response = httpx.post(url, data=data, files=files, timeout=120)
        assert response.status_code == 200, response.text
        return response.content

    hummed = compose(330.0)
    with av.open(io.BytesIO(hummed), mode="r") as container:
        assert sum(frame.samples for frame in container.decode(audio=0)) == 2 * 32000
    assert compose(330.0) == hummed
    assert compose(523.0) != hummed
    assert compose(None) != hummed


def test_the_chroma_names_each_notes_pitch_class() -> None:
    """C4, E4, G4, A4 in turn: each note's frames are one-hots of C (0), E (4), G (7), A (9)."""
    from composer.chroma import ChromaExtractor, ChromaSettings

    notes = tone([261.63, 329.63, 392.0, 440.0], 8.0, rate=32000)
    chroma = ChromaExtractor(ChromaSettings())(torch.from_numpy(notes.samples))
    assert chroma.shape == (1 + 8 * 32000 // 4096, 12)
    assert torch.equal(chroma.sum(-1), torch.ones(chroma.shape[0]))
    per_note = chroma.shape[0] // 4
    middles = [int(chroma[per_note * i + per_note // 2].argmax()) for i in range(4)]
    assert middles == [0, 4, 7, 9]
