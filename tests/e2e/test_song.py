"""A song through the whole pipeline: the gateway in front of the stack's captioner and a composer
serving the tiny ACE-Step (diffusers), real processes. The user's lyrics go through the brief
to the composer, which sings them in 48 kHz stereo, on `/generate` and on jobs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from urllib.parse import unquote

import av
import httpx
import numpy as np
import pytest

from tests.e2e.browser import SHOTS, downloaded, studio_page
from tests.e2e.conftest import Stack, tiny_composer
from tests.e2e.jobs import composers_gateway, jobs_gateway, seconds_of, submit, wait_for
from tooling.supervise import RunningService

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

LYRICS = "[verse]\nLanterns in the rain,\nwe walk on\n\n[chorus]\nStay, stay"


def diffusion_composer(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> AbstractContextManager[RunningService]:
    """A composer process serving the tiny build of diffusion model `kind`."""
    build = ["composer.tiny", "--kind", kind]
    return tiny_composer(build, "diffusers", f"tiny-{kind}", tmp_path_factory)


@pytest.fixture(scope="module")
def song_composer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with diffusion_composer("ace-step", tmp_path_factory) as composer:
        yield composer


@pytest.fixture(scope="module")
def song_gateway(
    stack: Stack, song_composer: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    jobs = tmp_path_factory.mktemp("jobs")
    with jobs_gateway(stack, jobs, GATEWAY_COMPOSER_URL=song_composer.url) as gateway:
        yield gateway.url


def test_the_users_lyrics_are_sung_end_to_end(
    song_gateway: str, song_composer: RunningService
) -> None:
    served = httpx.get(f"{song_gateway}/models").json()
    assert served["composer_sings"] is True
    data = {"prompt": "a rainy walk", "lyrics": LYRICS, "duration": "2", "seed": "7"}
    response = httpx.post(f"{song_gateway}/generate", data=data, timeout=300)
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == "2"
    assert response.headers["x-sample-rate"] == "48000"
    assert abs(seconds_of(response.content) - 2.0) < 0.02
    brief = json.loads(unquote(response.headers["x-weavewave-brief"]))
    assert brief["lyrics"] == LYRICS
    # The composer sang exactly those words: asked directly, it makes the same bytes, and
    # other words make another song.
    direct = {
        "description": brief["description"],
        "lyrics": LYRICS,
        "duration": "2",
        "seed": "7",
        "format": "wav",
    }
    same = httpx.post(f"{song_composer.url}/v1/compose", data=direct, timeout=120)
    assert same.status_code == 200 and same.content == response.content
    other = {**direct, "lyrics": "[verse]\nother words entirely"}
    assert httpx.post(f"{song_composer.url}/v1/compose", data=other, timeout=120).content != (
        response.content
    )


def test_compose_with_lyrics_and_a_job_both_sing(song_gateway: str) -> None:
    given = {"description": "folk ballad, warm voice", "lyrics": LYRICS, "duration": "1"}
    response = httpx.post(f"{song_gateway}/compose", data={**given, "seed": "3"}, timeout=300)
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == "2"
    job = submit(song_gateway, {"prompt": "a rainy walk", "lyrics": LYRICS, "duration": "1"})
    done = wait_for(song_gateway, job["id"], {"done", "failed"})
    assert done["state"] == "done", done
    audio = httpx.get(f"{song_gateway}/jobs/{done['id']}/audio", timeout=60)
    assert audio.status_code == 200
    assert abs(seconds_of(audio.content) - 1.0) < 0.02


@pytest.fixture(scope="module")
def two_composers(
    stack: Stack, song_composer: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway knowing MusicGen (the stack's, the default) and ACE-Step by name."""
    named = {"musicgen": stack.composer.url, "ace-step": song_composer.url}
    with composers_gateway(stack, tmp_path_factory, named) as gateway:
        yield gateway.url


def test_each_request_picks_its_composer_by_name(two_composers: str) -> None:
    served = httpx.get(f"{two_composers}/models").json()
    assert [c["name"] for c in served["composers"]] == ["musicgen", "ace-step"]
    musicgen, ace_step = served["composers"]
    assert not musicgen["sings"] and musicgen["sample_rate"] == 32000
    assert ace_step["sings"] and ace_step["sample_rate"] == 48000 and ace_step["channels"] == 2
    assert served["composer_sings"] is False  # the default's
    given = {"description": "folk ballad", "duration": "1", "seed": "3"}
    plain = httpx.post(f"{two_composers}/compose", data=given, timeout=120)
    assert plain.status_code == 200 and plain.headers["x-sample-rate"] == "32000"
    sung = httpx.post(
        f"{two_composers}/compose", data={**given, "model": "ace-step", "lyrics": LYRICS}
    )
    assert sung.status_code == 200, sung.text
    assert sung.headers["x-channels"] == "2" and sung.headers["x-sample-rate"] == "48000"
    refused = httpx.post(f"{two_composers}/generate", data={"lyrics": LYRICS, "duration": "1"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "vocals_unsupported"
    assert "ace-step" in refused.json()["error"]["message"]  # the one that can
    unknown = httpx.post(f"{two_composers}/compose", data={**given, "model": "nope"})
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert error["code"] == "unknown_model" and "musicgen, ace-step" in error["message"]
    job = submit(two_composers, {"prompt": "rain", "lyrics": LYRICS, "model": "ace-step"})
    done = wait_for(two_composers, job["id"], {"done", "failed"})
    assert done["state"] == "done", done
    refused_job = httpx.post(f"{two_composers}/jobs", data={"prompt": "rain", "model": "nope"})
    assert refused_job.status_code == 422


def test_the_studio_picks_the_song_composer_and_sings(two_composers: str, tmp_path: Path) -> None:
    with studio_page(two_composers) as page:
        page.wait_for_selector("#model-box:not([hidden])", timeout=30_000)
        options = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
        assert options == ["musicgen", "ace-step"]
        page.select_option("#model", "ace-step")
        page.fill("#prompt", "a rainy walk")
        page.fill("#lyrics", LYRICS)
        page.fill("#duration", "2")
        page.fill("#seed", "5")
        page.click("#compose")
        page.wait_for_selector("#download:not([hidden])", timeout=180_000)
        assert page.inner_text("#status").startswith("done")
        page.screenshot(path=str(SHOTS / "studio-song.png"), full_page=True)
        rate, channels, seconds = downloaded(page, tmp_path)
    assert (rate, channels) == (48000, 2)
    assert abs(seconds - 2.0) < 0.02


def test_a_clip_is_reused_by_the_song_composer(two_composers: str) -> None:
    from tests.media_factory import wav_bytes

    served = httpx.get(f"{two_composers}/models").json()
    assert served["composers"][1]["audio_uses"] == ["reference", "cover", "repaint"]
    clip = {"audio": ("riff.wav", wav_bytes(2.0, rate=48000, freq=220.0), "audio/wav")}
    base = {"description": "folk ballad", "duration": "2", "seed": "3", "model": "ace-step"}
    url = f"{two_composers}/compose"
    bodies = {}
    for fields, done in (
        ({}, "reference"),  # auto: the song composer borrows the clip's timbre
        ({"audio_use": "cover", "cover_strength": "0.5"}, "cover"),
        ({"audio_use": "repaint", "repaint_start": "0.5", "repaint_end": "1.5"}, "repaint"),
    ):
        response = httpx.post(url, data={**base, **fields}, files=clip, timeout=120)
        assert response.status_code == 200, response.text
        assert response.headers["x-weavewave-audio-use"] == done
        bodies[done] = response.content
    assert len(set(bodies.values())) == 3
    refused = httpx.post(url, data={**base, "model": "musicgen", "audio_use": "cover"}, files=clip)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "audio_use_unsupported"
    bad_span = {**base, "audio_use": "repaint", "repaint_start": "1.5", "repaint_end": "0.5"}
    rejected = httpx.post(url, data=bad_span, files=clip, timeout=60)
    assert rejected.status_code == 422, rejected.text


DIFFUSION = {
    # kind: (sample rate, channels, longest clip of its own)
    "stable-audio": (44100, 2, 47.55),
    "audioldm2": (16000, 1, None),
    "stable-audio-3": (44100, 2, 380.0),
}


@pytest.fixture(scope="module")
def every_composer(
    stack: Stack, song_composer: RunningService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway naming MusicGen, ACE-Step and the other three diffusion composers, each its own
    real process on its tiny build."""
    named = {"musicgen": stack.composer.url, "ace-step": song_composer.url}
    with ExitStack() as services:
        for kind in DIFFUSION:
            composer = services.enter_context(diffusion_composer(kind, tmp_path_factory))
            named[kind] = composer.url
        with composers_gateway(stack, tmp_path_factory, named) as gateway:
            yield gateway.url


@pytest.mark.parametrize("kind", sorted(DIFFUSION))
def test_each_diffusion_composer_serves_generate(every_composer: str, kind: str) -> None:
    rate, channels, longest = DIFFUSION[kind]
    (card,) = [
        c for c in httpx.get(f"{every_composer}/models").json()["composers"] if c["name"] == kind
    ]
    assert (card["sample_rate"], card["channels"], card["sings"]) == (rate, channels, False)
    data = {"prompt": "rain on a tin roof", "duration": "2", "seed": "9", "model": kind}
    response = httpx.post(f"{every_composer}/generate", data=data, timeout=300)
    assert response.status_code == 200, response.text
    assert response.headers["x-sample-rate"] == str(rate)
    assert response.headers["x-channels"] == str(channels)
    assert abs(seconds_of(response.content) - 2.0) < 0.02
    given = {"description": "rain on a tin roof", "duration": "2", "seed": "9", "model": kind}
    composed = [httpx.post(f"{every_composer}/compose", data=given, timeout=300) for _ in "ab"]
    assert composed[0].status_code == 200 and composed[0].content == composed[1].content
    if longest is not None:
        too_long = {**data, "duration": f"{longest + 1:.0f}"}
        refused = httpx.post(f"{every_composer}/generate", data=too_long, timeout=300)
        assert refused.status_code == 422, refused.text
        # the model's own cap (the composer's), or the gateway's where that is lower
        assert refused.json()["error"]["code"] in ("duration_too_long", "duration_out_of_range")


def pcm_of(body: bytes) -> np.ndarray:
    """A 16-bit WAV's samples [channels, N]."""
    with av.open(io.BytesIO(body), mode="r") as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        channels = stream.channels
    return np.concatenate(frames).reshape(-1, channels).T


def test_stable_audio_3_continues_a_clip_through_the_gateway(every_composer: str) -> None:
    from tests.media_factory import wav_bytes

    (card,) = [
        c
        for c in httpx.get(f"{every_composer}/models").json()["composers"]
        if c["name"] == "stable-audio-3"
    ]
    assert card["audio_uses"] == ["cover", "repaint", "continue"]
    clip = wav_bytes(0.75, rate=44100, freq=220.0)
    data = {"description": "a tune", "duration": "2", "seed": "4", "model": "stable-audio-3"}
    response = httpx.post(
        f"{every_composer}/compose",
        data={**data, "audio_use": "continue"},
        files={"audio": ("start.wav", clip, "audio/wav")},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-weavewave-audio-use"] == "continue"
    music = pcm_of(response.content)
    assert music.shape == (2, 88200)
    given = np.frombuffer(clip[44:], dtype="<i2")  # the tone, mono: both channels carry it
    # The clip itself, as the composer sends it: bit for bit out of the model, then through the
    # peak limiter every stream passes (it may only turn the level down, never reshape).
    for head in music[:, : given.size].astype(np.float64):
        assert np.corrcoef(head, given)[0, 1] > 0.999
        assert np.abs(head).max() <= np.abs(given).max() + 1
    assert np.abs(music[:, given.size + 2000 :]).max() > 30  # then music made after it
    unasked = httpx.post(f"{every_composer}/compose", data=data, timeout=300)
    assert unasked.status_code == 200 and unasked.content != response.content
    # its other two uses of a clip, each by name, each other music
    whole = {"audio": ("whole.wav", wav_bytes(2.0, rate=44100, freq=220.0), "audio/wav")}
    bodies = {response.content}
    for fields in (
        {"audio_use": "cover", "cover_strength": "0.7"},
        {"audio_use": "repaint", "repaint_start": "0.5", "repaint_end": "1.5"},
    ):
        reused = httpx.post(
            f"{every_composer}/compose", data={**data, **fields}, files=whole, timeout=300
        )
        assert reused.status_code == 200, reused.text
        assert reused.headers["x-weavewave-audio-use"] == fields["audio_use"]
        bodies.add(reused.content)
    assert len(bodies) == 3
