"""The diffusion composers through diffusers (`COMPOSER_BACKEND=diffusers`) on their tiny builds:
ACE-Step (songs), Stable Audio Open, AudioLDM 2 and Stable Audio 3. Each backend on its own
(seeds alone == batched, progress per step, cancellation, the exact length), then each service
as a real process (every format at the model's rate and channels, the model's own duration
cap)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from composer.backends import load_backend
from composer.generation import (
    BackendOptions,
    GenerationParams,
    GenerationRequest,
    MusicBackend,
    Song,
)
from tests.composer.conftest import serve_composer
from tests.composer.sinks import RecordingSink
from tooling.supervise import RunningService

pytestmark = pytest.mark.timeout(300)

VERSE = "[verse]\nsoft notes in the morning light"
KINDS = {
    # kind: (sample rate, channels, longest clip of its own, whether it sings)
    "ace-step": (48000, 2, 600.0, True),
    "stable-audio": (44100, 2, 1024 * 2048 / 44100, False),
    "audioldm2": (16000, 1, None, False),
    "stable-audio-3": (44100, 2, 380.0, False),
}
SERVICE_MAX_S = 1000.0


@pytest.fixture(scope="module", params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def model_dir(kind: str, request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue(f"tiny_{kind.replace('-', '_')}")
    return path


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> MusicBackend:
    return load_backend(BackendOptions("diffusers", str(model_dir)))


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


def test_the_models_rate_channels_and_the_exact_length(kind: str, backend: MusicBackend) -> None:
    rate, channels, longest, sings = KINDS[kind]
    assert (backend.sample_rate, backend.channels, backend.sings) == (rate, channels, sings)
    assert backend.max_duration_s == (pytest.approx(longest) if longest else None)
    assert not backend.supports_melody
    (audio,) = generate(backend, [song("pop, upbeat", 2.3, 1)])
    assert audio.shape == (channels, round(2.3 * rate))  # latent frames' extra samples are cut
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.01  # peaks: the limiter
    if channels == 2:
        assert not np.array_equal(audio[0], audio[1])


def test_a_seed_gives_the_same_audio_alone_or_batched(backend: MusicBackend) -> None:
    """Rows of one batch group (same token lengths) each equal their solo run."""
    rows = [song("pop, upbeat", 1.0, 5), song("pop, upbeat", 1.0, 6)]
    assert len({backend.batch_group(r.description, r.song) for r in rows}) == 1
    alone = [generate(backend, [r])[0] for r in rows]
    batched = generate(backend, rows)
    for one, many in zip(alone, batched, strict=True):
        np.testing.assert_allclose(many, one, atol=1e-5)
    assert not np.allclose(alone[0], alone[1], atol=1e-3)
    other_words = generate(backend, [song("soft rain, a roof", 1.0, 5)])[0]
    assert not np.allclose(alone[0], other_words, atol=1e-4)


def test_progress_per_step_and_a_cancelled_batch_stops(backend: MusicBackend) -> None:
    done = RecordingSink(1)
    generate(backend, [song("pop", 1.0, 5)], done)
    assert done.steps == 8  # COMPOSER_DIFFUSION_STEPS' default

    class CancelledAtOnce(RecordingSink):
        def is_cancelled(self, row: int) -> bool:
            return True

    cancelled = CancelledAtOnce(2)
    backend.generate([song("pop", 1.0, 5), song("pop", 1.0, 6)], cancelled)
    assert cancelled.steps == 1 and cancelled.chunks == [[], []]


def test_the_lyrics_change_the_song_and_group_the_batch(ace_step: MusicBackend) -> None:
    sung = generate(ace_step, [song("pop, upbeat", 1.0, 5)])[0]
    other = generate(ace_step, [song("pop, upbeat", 1.0, 5, lyrics="[chorus]\nla la la")])[0]
    assert not np.allclose(sung, other, atol=1e-3)
    longer = Song(lyrics=VERSE + "\n[chorus]\nsing it loud tonight")
    assert ace_step.batch_group("pop", Song(lyrics=VERSE)) != ace_step.batch_group("pop", longer)
    assert ace_step.batch_group("pop", Song(bpm=90)) != ace_step.batch_group("pop", Song(bpm=120))


@pytest.fixture(scope="module")
def diffusion_composer(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with serve_composer(
        "diffusers", model_dir, tmp_path_factory, max_duration_s=f"{SERVICE_MAX_S:g}"
    ) as service:
        yield service


def compose_song(service: RunningService, **fields: str) -> httpx.Response:
    data = {"description": "pop, upbeat", "duration": "2", "seed": "3", **fields}
    return httpx.post(f"{service.url}/v1/compose", data=data, timeout=120)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
def test_the_service_streams_every_format(
    kind: str, diffusion_composer: RunningService, fmt: str
) -> None:
    rate, channels, _, _ = KINDS[kind]
    response = compose_song(diffusion_composer, format=fmt)
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == str(channels)
    assert response.headers["x-sample-rate"] == str(48000 if fmt == "ogg" else rate)
    with av.open(io.BytesIO(response.content), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
        assert stream.codec_context.channels == channels
        seconds = samples / stream.rate
    assert abs(seconds - 2.0) <= (0.1 if fmt == "mp3" else 0.02)  # MP3: priming and padding


def test_the_service_reports_the_model_and_enforces_its_longest_clip(
    kind: str, diffusion_composer: RunningService
) -> None:
    _, _, own, sings = KINDS[kind]
    longest = own or SERVICE_MAX_S
    (card,) = httpx.get(f"{diffusion_composer.url}/v1/models").json()["models"]
    assert card["sings"] is sings and card["backend"] == "diffusers"
    assert card["max_duration_s"] == pytest.approx(longest)  # its own, under the service's
    too_long = compose_song(diffusion_composer, duration=f"{longest + 1:.0f}")
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "duration_too_long"
    same, again = compose_song(diffusion_composer), compose_song(diffusion_composer)
    assert same.status_code == 200 and same.content == again.content
    if sings:
        sung = compose_song(diffusion_composer, lyrics=VERSE, bpm="90", key="A minor")
        assert sung.status_code == 200 and sung.content != same.content
        assert compose_song(diffusion_composer, time_signature="four").status_code == 422
    else:
        refused = compose_song(diffusion_composer, lyrics=VERSE)
        assert refused.json()["error"]["code"] == "vocals_unsupported"


def test_a_model_that_does_not_sing_refuses_lyrics(composer: RunningService) -> None:
    (card,) = httpx.get(f"{composer.url}/v1/models").json()["models"]
    assert card["sings"] is False
    refused = compose_song(composer, lyrics=VERSE)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "vocals_unsupported"


def stereo_tone(seconds: float, rate: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)]).astype(
        np.float32
    )


def reusing(use: str, **knobs: float) -> GenerationRequest:
    from composer.generation import SourceAudio

    return GenerationRequest(
        "pop, upbeat",
        GenerationParams(duration_s=2.0, seed=5),
        song=Song(lyrics=VERSE),
        source=SourceAudio(stereo_tone(2.0), use, **knobs),
    )


def test_ace_step_reuses_a_clip_three_ways(ace_step: MusicBackend) -> None:
    assert ace_step.audio_uses == ("reference", "cover", "repaint")
    (plain,) = generate(ace_step, [song("pop, upbeat", 2.0, 5)])
    (timbre,) = generate(ace_step, [reusing("reference")])
    (close,) = generate(ace_step, [reusing("cover", strength=1.0)])
    (loose,) = generate(ace_step, [reusing("cover", strength=0.2)])
    for audio in (timbre, close, loose):
        assert audio.shape == (2, 96000)
    # the tiny timbre encoder hears the clip faintly (random weights), but it does hear it
    assert not np.allclose(timbre, plain, atol=1e-5)
    assert not np.allclose(close, plain, atol=1e-3) and not np.allclose(close, loose, atol=1e-3)
    (repainted,) = generate(ace_step, [reusing("repaint", start_s=0.5, end_s=1.5)])
    clip = stereo_tone(2.0)
    # outside the span the clip itself, bit for bit; inside, new music
    np.testing.assert_array_equal(repainted[:, :24000], clip[:, :24000])
    np.testing.assert_array_equal(repainted[:, 72000:], clip[:, 72000:])
    assert not np.allclose(repainted[:, 30000:66000], clip[:, 30000:66000], atol=1e-2)


def test_stable_audio_3_covers_repaints_and_continues_a_clip(tiny_stable_audio_3: Path) -> None:
    from composer.generation import SourceAudio

    backend = load_backend(BackendOptions("diffusers", str(tiny_stable_audio_3)))
    assert backend.audio_uses == ("cover", "repaint", "continue")
    clip = stereo_tone(2.0, rate=44100)

    def with_clip(use: str, clip: np.ndarray = clip, **knobs: float) -> np.ndarray:
        request = GenerationRequest(
            "ambient pads",
            GenerationParams(duration_s=2.0, seed=5),
            source=SourceAudio(clip, use, **knobs),
        )
        (audio,) = generate(backend, [request])
        assert audio.shape == (2, 88200)
        return audio

    (plain,) = generate(backend, [GenerationRequest("ambient pads", GenerationParams(2.0, 5))])
    close, loose = with_clip("cover", strength=0.9), with_clip("cover", strength=0.1)
    # audio-to-audio starts from the clip's latents: the closer, the nearer the clip's decode
    assert not np.allclose(close, plain, atol=1e-3) and not np.allclose(close, loose, atol=1e-3)
    assert np.abs(close - clip).mean() < np.abs(loose - clip).mean()
    repainted = with_clip("repaint", start_s=0.5, end_s=1.5)
    np.testing.assert_array_equal(repainted[:, :22050], clip[:, :22050])  # bit for bit
    np.testing.assert_array_equal(repainted[:, 66150:], clip[:, 66150:])
    assert not np.allclose(repainted[:, 26000:62000], clip[:, 26000:62000], atol=1e-2)
    # continue: the first 0.75 s are the clip's, the rest is made after it
    head = clip[:, :33075]
    continued = with_clip("continue", head, start_s=0.75, end_s=2.0)
    np.testing.assert_array_equal(continued[:, :33075], head)
    assert np.abs(continued[:, 34000:]).max() > 1e-3  # new audio, not the clip's silence


def test_the_service_takes_a_clip_to_reuse_and_refuses_what_it_cannot(
    kind: str, diffusion_composer: RunningService
) -> None:
    from tests.media_factory import wav_bytes

    (card,) = httpx.get(f"{diffusion_composer.url}/v1/models").json()["models"]
    clip = {"audio": ("hum.wav", wav_bytes(1.5, rate=48000), "audio/wav")}
    url = f"{diffusion_composer.url}/v1/compose"
    assert card["follows_sections"] is False
    later = '[{"start_s": 1.0, "description": "brass"}]'
    sections = httpx.post(url, data={"description": "pads", "duration": "2", "sections": later})
    assert sections.status_code == 422
    assert sections.json()["error"]["code"] == "sections_unsupported"
    assert "transformers" in sections.json()["error"]["message"]
    if kind == "stable-audio-3":
        assert card["audio_uses"] == ["cover", "repaint", "continue"]
        base = {"description": "pads", "duration": "2", "seed": "3", "format": "wav"}
        going = httpx.post(url, data={**base, "audio_use": "continue"}, files=clip, timeout=120)
        assert going.status_code == 200, going.text
        with av.open(io.BytesIO(going.content)) as container:
            assert container.streams.audio[0].rate == 44100
        short = {**base, "duration": "1", "audio_use": "continue"}
        refused = httpx.post(url, data=short, files=clip, timeout=60)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "continue_nothing_left"
        return
    if kind != "ace-step":
        assert card["audio_uses"] == []
        refused = httpx.post(
            f"{diffusion_composer.url}/v1/compose",
            data={"description": "pads", "duration": "1", "audio_use": "cover"},
            files=clip,
        )
        assert refused.json()["error"]["code"] == "audio_use_unsupported"
        return
    assert card["audio_uses"] == ["reference", "cover", "repaint"]
    base = {"description": "pop, upbeat", "duration": "2", "seed": "3"}
    covered = httpx.post(url, data={**base, "audio_use": "cover"}, files=clip, timeout=120)
    assert covered.status_code == 200, covered.text
    assert covered.content != compose_song(diffusion_composer).content
    for fields, code in (
        ({"audio_use": "repaint", "repaint_start": "1.5", "repaint_end": "1"}, "repaint_span"),
        ({}, "audio_use_without_audio"),
    ):
        bad = httpx.post(url, data={**base, **fields}, files=clip, timeout=60)
        assert bad.status_code == 422 and bad.json()["error"]["code"].startswith(code), bad.text
    no_clip = httpx.post(url, data={**base, "audio_use": "reference"}, timeout=60)
    assert no_clip.json()["error"]["code"] == "audio_use_without_audio"


def test_stable_audio_3_decodes_in_windows_as_it_would_whole(tiny_stable_audio_3: Path) -> None:
    """SAME's dense band mask grows with the square of the clip: the backend decodes a window
    at a time with the decoder's reach on both sides, which gives the whole decode's audio."""
    import torch

    from composer.backends.diffusion.stable_audio_3 import decode_in_windows

    backend = load_backend(BackendOptions("diffusers", str(tiny_stable_audio_3)))
    vae = backend._pipe.vae  # type: ignore[attr-defined]
    latents = torch.randn(1, 8, 300, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = vae.decode(latents).sample
        windowed = decode_in_windows(vae, latents, window=64)  # five windows
    assert windowed.shape == whole.shape == (1, 2, 300 * 4096)
    torch.testing.assert_close(windowed, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["stable-audio", "stable-audio-3"])
def test_stable_audio_batches_prompts_of_any_length(
    name: str, request: pytest.FixtureRequest
) -> None:
    """Before: rows were grouped by token length, so free-text briefs never shared a batch.
    The pipelines pad every prompt to a fixed length: each row still equals its solo run."""
    model: Path = request.getfixturevalue(f"tiny_{name.replace('-', '_')}")
    backend = load_backend(BackendOptions("diffusers", str(model)))
    rows = [song("pads", 1.0, 5), song("a slow string quartet under soft summer rain", 1.0, 6)]
    assert len({backend.batch_group(r.description, r.song) for r in rows}) == 1
    alone = [generate(backend, [r])[0] for r in rows]
    for one, many in zip(alone, generate(backend, rows), strict=True):
        np.testing.assert_allclose(many, one, atol=1e-5)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_audio_decoder_runs_in_float32_under_a_bfloat16_denoiser(
    name: str, request: pytest.FixtureRequest
) -> None:
    """Before: every component was loaded in the one dtype, so the VAE decoded in bf16. Now
    the VAE (and AudioLDM 2's vocoder) stay float32; a clip to reuse still encodes into the
    denoiser's dtype (Stable Audio 3's cover, ACE-Step's repaint)."""
    import torch

    from composer.generation import SourceAudio

    model: Path = request.getfixturevalue(f"tiny_{name.replace('-', '_')}")
    backend = load_backend(BackendOptions("diffusers", str(model), dtype="bfloat16"))
    pipe = backend._pipe  # type: ignore[attr-defined]
    assert {p.dtype for p in pipe.vae.parameters()} == {torch.float32}
    denoiser = pipe.unet if name == "audioldm2" else pipe.transformer
    assert {p.dtype for p in denoiser.parameters()} == {torch.bfloat16}
    rate, channels = KINDS[name][:2]
    requests = [song("pop, upbeat", 1.0, 5)]
    if name in ("ace-step", "stable-audio-3"):
        use = {"ace-step": "repaint", "stable-audio-3": "cover"}[name]
        clip = SourceAudio(stereo_tone(1.0, rate), use, start_s=0.25, end_s=0.75)
        requests.append(GenerationRequest("pop", GenerationParams(1.0, 5), source=clip))
    for r in requests:
        (audio,) = generate(backend, [r])
        assert audio.dtype == np.float32 and audio.shape == (channels, rate)
        assert np.isfinite(audio).all()


def test_ace_step_decodes_a_long_song_in_tiles_equal_to_the_whole(
    ace_step: MusicBackend,
) -> None:
    """Before: a 600 s song was decoded in one call (its activations grow with the song)."""
    import torch

    vae = ace_step._pipe.vae  # type: ignore[attr-defined]
    assert vae.use_tiling
    latents = torch.randn(1, vae.config.decoder_input_channels, 700)  # 28 s: two tiles
    with torch.inference_mode():
        tiled = vae.decode(latents).sample
        vae.use_tiling = False
        try:
            whole = vae.decode(latents).sample
        finally:
            vae.use_tiling = True
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


async def test_a_short_request_is_not_stuck_behind_a_long_song(ace_step: MusicBackend) -> None:
    """Before: one model thread, so a short clip waited for the whole of any song started
    before it. With the long lane the short one finishes first, and a lane's twin pipeline
    makes the same audio as the original."""
    import asyncio

    from composer.backends.diffusion.pipeline import PipelineBackend
    from composer.scheduler import BatchScheduler, Lanes, Ticket

    assert isinstance(ace_step, PipelineBackend)
    twin = ace_step.sibling()
    r = song("pop, upbeat", 1.0, 5)
    np.testing.assert_array_equal(generate(twin, [r])[0], generate(ace_step, [r])[0])
    lanes = Lanes(BatchScheduler(ace_step, 4, 0, 8), BatchScheduler(twin, 4, 0, 8), 60.0)
    await lanes.start()
    finished: list[str] = []

    async def drain(name: str, ticket: Ticket) -> None:
        async for _ in ticket.chunks():
            pass
        finished.append(name)

    try:
        long = asyncio.create_task(drain("long", lanes.submit(song("pop", 300.0, 1))))
        await asyncio.sleep(0.5)  # the long song is being denoised
        await drain("short", lanes.submit(song("pop", 1.0, 2)))
        await long
    finally:
        await lanes.stop()
    assert finished == ["short", "long"]
