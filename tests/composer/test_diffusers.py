"""ACE-Step through diffusers (`COMPOSER_BACKEND=diffusers`) on its tiny build: the backend on
its own (seeds alone == batched, progress per step, cancellation, lyrics), then the service as
a real process (every format in stereo at 48 kHz, the model's own duration cap)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from composer.backends import (
    BackendOptions,
    GenerationParams,
    GenerationRequest,
    MusicBackend,
    Song,
    load_backend,
)
from tests.composer.conftest import serve_composer
from tests.composer.sinks import RecordingSink
from weavewave_common.supervise import RunningService

pytestmark = pytest.mark.timeout(300)

VERSE = "[verse]\nsoft notes in the morning light"


@pytest.fixture(scope="module")
def ace_step(tiny_ace_step: Path) -> MusicBackend:
    return load_backend(BackendOptions("diffusers", str(tiny_ace_step)))


def song(text: str, seconds: float, seed: int, lyrics: str = VERSE) -> GenerationRequest:
    return GenerationRequest(
        text, GenerationParams(duration_s=seconds, seed=seed), song=Song(lyrics=lyrics)
    )


def generate(
    backend: MusicBackend, requests: list[GenerationRequest], sink: RecordingSink | None = None
) -> list[np.ndarray]:
    sink = sink or RecordingSink(len(requests))
    backend.generate(requests, sink)
    return [sink.audio(i) for i in range(len(requests))]


def test_ace_step_sings_in_stereo_at_48_khz(ace_step: MusicBackend) -> None:
    assert ace_step.sings and not ace_step.supports_melody
    assert (ace_step.sample_rate, ace_step.channels) == (48000, 2)
    assert ace_step.max_duration_s == 600.0
    (audio,) = generate(ace_step, [song("pop, upbeat", 2.3, 1)])
    assert audio.shape == (2, 110400)  # exact: the 58th latent frame's extra samples are cut
    assert not np.array_equal(audio[0], audio[1])


def test_a_seed_gives_the_same_song_alone_or_batched(ace_step: MusicBackend) -> None:
    """Rows of one batch group (same token lengths) each equal their solo run."""
    rows = [song("pop, upbeat", 1.0, 5), song("pop, upbeat", 1.0, 6)]
    assert len({ace_step.batch_group(r.description, r.song) for r in rows}) == 1
    alone = [generate(ace_step, [r])[0] for r in rows]
    batched = generate(ace_step, rows)
    for one, many in zip(alone, batched, strict=True):
        np.testing.assert_allclose(many, one, atol=1e-5)
    assert not np.allclose(alone[0], alone[1], atol=1e-3)


def test_the_lyrics_change_the_song_and_group_the_batch(ace_step: MusicBackend) -> None:
    sung = generate(ace_step, [song("pop, upbeat", 1.0, 5)])[0]
    other = generate(ace_step, [song("pop, upbeat", 1.0, 5, lyrics="[chorus]\nla la la")])[0]
    assert not np.allclose(sung, other, atol=1e-3)
    longer = Song(lyrics=VERSE + "\n[chorus]\nsing it loud tonight")
    assert ace_step.batch_group("pop", Song(lyrics=VERSE)) != ace_step.batch_group("pop", longer)
    assert ace_step.batch_group("pop", Song(bpm=90)) != ace_step.batch_group("pop", Song(bpm=120))


def test_progress_per_step_and_a_cancelled_batch_stops(ace_step: MusicBackend) -> None:
    done = RecordingSink(1)
    generate(ace_step, [song("pop", 1.0, 5)], done)
    assert done.steps == 8  # COMPOSER_DIFFUSION_STEPS' default

    class CancelledAtOnce(RecordingSink):
        def is_cancelled(self, row: int) -> bool:
            return True

    cancelled = CancelledAtOnce(2)
    ace_step.generate([song("pop", 1.0, 5), song("pop", 1.0, 6)], cancelled)
    assert cancelled.steps == 1 and cancelled.chunks == [[], []]


@pytest.fixture(scope="module")
def ace_step_composer(
    tiny_ace_step: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with serve_composer(
        "diffusers", tiny_ace_step, tmp_path_factory, max_duration_s="1000"
    ) as service:
        yield service


def compose_song(service: RunningService, **fields: str) -> httpx.Response:
    data = {"description": "pop, upbeat", "duration": "2", "lyrics": VERSE, "seed": "3", **fields}
    return httpx.post(f"{service.url}/v1/compose", data=data, timeout=120)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_the_service_streams_a_song_in_every_format(
    ace_step_composer: RunningService, fmt: str
) -> None:
    response = compose_song(ace_step_composer, format=fmt)
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == "2"
    assert response.headers["x-sample-rate"] == "48000"
    with av.open(io.BytesIO(response.content), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
        assert stream.codec_context.channels == 2
    slack = 0.08 if fmt == "mp3" else 0.02
    assert abs(samples / 48000 - 2.0) <= slack


def test_the_service_reports_the_model_and_enforces_its_longest_song(
    ace_step_composer: RunningService,
) -> None:
    (card,) = httpx.get(f"{ace_step_composer.url}/v1/models").json()["models"]
    assert card["sings"] is True and card["backend"] == "diffusers"
    assert card["max_duration_s"] == 600.0  # the model's own cap, under the service's 1000
    too_long = compose_song(ace_step_composer, duration="601")
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "duration_too_long"
    same, again = compose_song(ace_step_composer), compose_song(ace_step_composer)
    assert same.content == again.content
    assert compose_song(ace_step_composer, bpm="90", key="A minor").content != same.content
    bad = compose_song(ace_step_composer, time_signature="four")
    assert bad.status_code == 422


def test_a_model_that_does_not_sing_refuses_lyrics(composer: RunningService) -> None:
    (card,) = httpx.get(f"{composer.url}/v1/models").json()["models"]
    assert card["sings"] is False
    refused = compose_song(composer)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "vocals_unsupported"
