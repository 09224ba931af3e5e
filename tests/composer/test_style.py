"""MusicGen-Style through audiocraft on its tiny build (`--kind audiocraft --style`: a tiny MERT,
the style conditioner, the excerpt and text prepended): the excerpt heard is the one asked for,
a seed gives the same music alone or batched, double guidance changes it; then the service as a
real process with `audio_use=style` and its knobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from composer.backends import load_backend
from composer.generation import (
    BackendOptions,
    GenerationParams,
    GenerationRequest,
    MusicBackend,
    SourceAudio,
)
from tests.composer.conftest import serve_composer
from tests.composer.sinks import RecordingSink
from tests.composer.test_backend_audiocraft import build_tiny_audiocraft
from tooling.supervise import RunningService

pytestmark = pytest.mark.timeout(300)

RATE = 32000


@pytest.fixture(scope="module")
def tiny_style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_audiocraft(tmp_path_factory, "tiny-musicgen-style", "--style")


@pytest.fixture(scope="module")
def style_model(tiny_style: Path) -> MusicBackend:
    return load_backend(BackendOptions("audiocraft", str(tiny_style)))


def clip(seconds: float, freq: float) -> np.ndarray:
    """A tone that rises in pitch, so that every excerpt of it differs."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t * (1 + t / 4)))[None].astype(np.float32)


def styled(
    text: str, seed: int, audio: np.ndarray, start: float, text_guidance: float | None = None
) -> GenerationRequest:
    params = GenerationParams(duration_s=1.0, seed=seed, text_guidance=text_guidance)
    source = SourceAudio(audio, "style", start_s=start, end_s=start + 2.0)
    return GenerationRequest(text, params, source=source)


def generate(model: MusicBackend, requests: list[GenerationRequest]) -> list[np.ndarray]:
    sink = RecordingSink(len(requests))
    model.generate(requests, sink)
    return [sink.audio(i) for i in range(len(requests))]


def test_the_style_model_takes_a_clip_for_its_style(style_model: MusicBackend) -> None:
    assert style_model.audio_uses == ("style",)
    assert style_model.supports_melody is False  # its audio conditioner is no chroma


def test_the_excerpt_heard_is_the_one_asked_for(style_model: MusicBackend) -> None:
    song = clip(6.0, 220.0)
    (early,) = generate(style_model, [styled("dreamy synthwave", 3, song, 0.5)])
    (late,) = generate(style_model, [styled("dreamy synthwave", 3, song, 3.5)])
    (again,) = generate(style_model, [styled("dreamy synthwave", 3, song, 0.5)])
    assert early.shape == (1, RATE)
    np.testing.assert_array_equal(early, again)  # no random excerpt: the window is the one
    assert not np.array_equal(early, late)
    # the same excerpt found elsewhere in another clip is the same style
    shifted = np.concatenate([np.zeros((1, RATE), np.float32), song], axis=-1)
    (moved,) = generate(style_model, [styled("dreamy synthwave", 3, shifted, 1.5)])
    np.testing.assert_array_equal(early, moved)


def test_a_seed_gives_the_same_style_alone_or_batched(style_model: MusicBackend) -> None:
    """Rows with excerpts of one length share a batch (these texts are of one token length)."""
    ours, theirs = clip(4.0, 220.0), clip(4.0, 330.0)
    (alone,) = generate(style_model, [styled("dreamy synthwave", 42, ours, 1.0)])
    batched = generate(
        style_model,
        [styled("epic brass horns", 7, theirs, 0.0), styled("dreamy synthwave", 42, ours, 1.0)],
    )
    np.testing.assert_array_equal(alone, batched[1])


def test_double_guidance_pushes_the_text(style_model: MusicBackend) -> None:
    song = clip(4.0, 220.0)
    (single,) = generate(style_model, [styled("dreamy synthwave", 5, song, 1.0)])
    (double,) = generate(style_model, [styled("dreamy synthwave", 5, song, 1.0, 5.0)])
    assert not np.array_equal(single, double)


@pytest.fixture(scope="module")
def style_composer(
    tiny_style: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with serve_composer("audiocraft", tiny_style, tmp_path_factory) as service:
        yield service


def test_the_service_follows_a_clips_style(style_composer: RunningService) -> None:
    from tests.media_factory import wav_bytes

    (card,) = httpx.get(f"{style_composer.url}/v1/models").json()["models"]
    assert card["audio_uses"] == ["style"] and card["supports_melody"] is False
    url = f"{style_composer.url}/v1/compose"
    base = {"description": "dreamy synthwave", "duration": "1", "seed": "3", "format": "wav"}
    files = {"audio": ("riff.wav", wav_bytes(5.0, rate=RATE, freq=220.0), "audio/wav")}
    middle = httpx.post(url, data={**base, "audio_use": "style"}, files=files, timeout=120)
    assert middle.status_code == 200, middle.text
    # by default the excerpt is the clip's middle: 3 s from 1 s
    same = {**base, "audio_use": "style", "style_start": "1", "style_length": "3"}
    assert httpx.post(url, data=same, files=files, timeout=120).content == middle.content
    pushed = {**same, "text_guidance": "6"}
    assert httpx.post(url, data=pushed, files=files, timeout=120).content != middle.content
    plain = httpx.post(url, data=base, timeout=120)
    assert plain.status_code == 200 and plain.content != middle.content
    short = {"audio": ("blip.wav", wav_bytes(1.0, rate=RATE), "audio/wav")}
    for fields, upload, code in (
        ({"audio_use": "style"}, short, "style_clip_too_short"),
        ({"audio_use": "style", "style_start": "4"}, files, "style_window_invalid"),
        ({"audio_use": "style", "style_length": "9"}, files, "invalid"),
        ({"audio_use": "cover"}, files, "audio_use_unsupported"),
    ):
        refused = httpx.post(url, data={**base, **fields}, files=upload, timeout=60)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"].startswith(code), refused.text
