"""The composer as a real process on the tiny MusicGen, over HTTP."""

from __future__ import annotations

import asyncio
import io
import json
from functools import partial
from typing import Any

import av
import httpx
import numpy as np
import pytest

from tests.media_factory import image_bytes, wav_bytes
from tests.metrics import metric as read_metric
from tests.metrics import still_for
from tooling.supervise import RunningService

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


def compose(service: RunningService, **fields: Any) -> httpx.Response:
    data = {
        "description": "lofi hip hop with mellow piano",
        **{k: str(v) for k, v in fields.items()},
    }
    return httpx.post(f"{service.url}/v1/compose", data=data, timeout=120)


def decoded_seconds(body: bytes) -> tuple[float, int]:
    with av.open(io.BytesIO(body), mode="r") as container:
        rate = container.streams.audio[0].rate
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return samples / rate, rate


def metric(service: RunningService, name: str) -> float:
    return read_metric(service.url, name)


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("wav", "audio/wav"), ("flac", "audio/flac"), ("mp3", "audio/mpeg"), ("ogg", "audio/ogg")],
)
def test_every_format_decodes_to_the_requested_duration(
    composer: RunningService, fmt: str, media_type: str
) -> None:
    response = compose(composer, duration=2, format=fmt, seed=1)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    seconds, rate = decoded_seconds(response.content)
    assert rate == int(response.headers["x-sample-rate"])
    assert rate == (48000 if fmt == "ogg" else 32000)
    slack = 0.08 if fmt == "mp3" else 0.02  # one 20 ms frame; MP3 adds encoder priming/padding
    assert abs(seconds - 2.0) <= slack
    assert response.headers["x-duration"] == "2.000"
    assert response.headers["x-seed"] == "1"


def test_same_seed_same_audio_and_a_seed_is_always_reported(composer: RunningService) -> None:
    first = compose(composer, duration=1, seed=1234)
    again = compose(composer, duration=1, seed=1234)
    other = compose(composer, duration=1, seed=99)
    assert first.content == again.content
    assert first.content != other.content
    unseeded = compose(composer, duration=1)
    assert unseeded.headers["x-seed"].isdigit()


def test_audio_streams_in_chunks(composer: RunningService) -> None:
    """Audio arrives while it is generated: a body buffered whole would pass a piece count."""
    steps = partial(metric, composer, "composer_generation_steps_total")
    before = steps()
    with httpx.stream(
        "POST",
        f"{composer.url}/v1/compose",
        timeout=60,
        data={"description": "ambient", "duration": "10"},
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        raw = response.iter_raw()
        pieces = [next(raw), next(raw)]  # the header, then the first audio
        at_first_audio = steps() - before
        pieces += [piece for piece in raw if piece]
    assert pieces[0][:4] == b"RIFF"
    assert len(pieces) >= 15  # about one piece per 0.5 s chunk
    assert at_first_audio < 0.5 * (steps() - before)  # most of the clip was still to come


def test_longer_than_one_window_is_continued(composer: RunningService) -> None:
    response = compose(composer, duration=7, seed=3)  # window 3 s, stride 2 s: three windows
    assert response.status_code == 200, response.text
    seconds, _ = decoded_seconds(response.content)
    assert seconds == pytest.approx(7.0, abs=0.02)


def test_concurrent_requests_share_the_engine_steps(composer: RunningService) -> None:
    steps_before = metric(composer, "composer_generation_steps_total")

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=composer.url, timeout=120) as client:
            calls = [
                client.post(
                    "/v1/compose",
                    data={
                        "description": f"song {i}",
                        "duration": "1",
                        "seed": str(i),
                        "format": "wav",
                    },
                )
                for i in range(3)
            ]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(run())
    # One second is 50 frames + 3 delay steps: alone, three requests would take 159 steps.
    assert metric(composer, "composer_generation_steps_total") - steps_before < 2 * 53
    for i, response in enumerate(responses):
        assert response.status_code == 200
        assert decoded_seconds(response.content)[0] == pytest.approx(1.0, abs=0.02)
        alone = compose(composer, description=f"song {i}", duration=1, seed=i)
        assert alone.content == response.content  # same seed: same audio, batched or not


def test_client_disconnect_stops_the_generation(composer: RunningService) -> None:
    with httpx.stream(
        "POST",
        f"{composer.url}/v1/compose",
        timeout=60,
        data={"description": "endless drone", "duration": "60"},
    ) as response:
        pieces = response.iter_raw()
        next(pieces)  # the WAV header: the generation is under way
        assert metric(composer, "composer_active_generations") == 1
        next(pieces)  # some audio
    # leaving the block closes the connection mid-stream: the model stops stepping for it
    assert still_for(partial(metric, composer, "composer_generation_steps_total"))
    assert compose(composer, duration=1).status_code == 200  # the model thread is free again


def test_bad_input_gets_clear_4xx(composer: RunningService) -> None:
    cases: list[tuple[int, str, dict[str, Any], Any]] = [
        (422, "invalid_input", {"duration": -1}, None),
        (422, "duration_too_long", {"duration": 10_000}, None),
        (422, "invalid_input", {"format": "aiff"}, None),
        (422, "empty_description", {"description": "   "}, None),
        (422, "invalid_input", {"seed": "abc"}, None),
        (422, "invalid_input", {"guidance": 0.5}, None),
        (422, "melody_unsupported", {}, ("melody", ("m.wav", wav_bytes(1.0), "audio/wav"))),
    ]
    for status, code, fields, melody in cases:
        data = {"description": "x", **{k: str(v) for k, v in fields.items()}}
        files = [melody] if melody else None
        response = httpx.post(f"{composer.url}/v1/compose", data=data, files=files, timeout=60)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    not_audio = [("melody", ("m.png", image_bytes(), "audio/wav"))]
    rejected = httpx.post(f"{composer.url}/v1/compose", data={"description": "x"}, files=not_audio)
    assert rejected.status_code in (415, 422)
    assert httpx.get(f"{composer.url}/readyz").status_code == 200


def test_sections_change_the_description_where_the_header_says(composer: RunningService) -> None:
    later = [
        {"start_s": 0.61, "description": "dark techno"},
        {"start_s": 1.5, "description": "harp"},
    ]
    sectioned = compose(composer, duration=2, seed=4, sections=json.dumps(later))
    assert sectioned.status_code == 200, sectioned.text
    assert sectioned.headers["x-sections"] == "0.000,0.600,1.500"  # on the codec's 20 ms frames
    assert decoded_seconds(sectioned.content)[0] == pytest.approx(2.0, abs=0.02)
    plain = compose(composer, duration=2, seed=4)
    assert "x-sections" not in plain.headers and plain.content != sectioned.content
    for bad in (
        "not json",
        json.dumps([{"start_s": 3.0, "description": "after the end"}]),
        json.dumps([{"start_s": 1.0, "description": "a"}, {"start_s": 0.5, "description": "b"}]),
        json.dumps([{"start_s": 1.0, "description": "a", "mood": "extra field"}]),
        json.dumps([{"start_s": 0.1 * (i + 1), "description": "x"} for i in range(16)]),
    ):
        refused = compose(composer, duration=2, sections=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "sections_invalid", refused.text


def test_models_and_openapi(composer: RunningService) -> None:
    models = httpx.get(f"{composer.url}/v1/models").json()["models"]
    assert models[0]["sample_rate"] == 32000
    assert models[0]["supports_melody"] is False
    assert models[0]["follows_sections"] is True
    spec = httpx.get(f"{composer.url}/openapi.json").json()
    operation = spec["paths"]["/v1/compose"]["post"]
    assert operation["operationId"] == "compose"
    assert set(operation["responses"]["200"]["content"]) == {
        "audio/wav",
        "audio/flac",
        "audio/mpeg",
        "audio/ogg",
    }
    assert {"422", "503"} <= set(operation["responses"])


def test_audio_the_caller_stopped_waiting_for_is_not_generated(composer: RunningService) -> None:
    """X-WeaveWave-Timeout-S bounds the wait for each piece of audio: a request that cannot
    deliver in time is dropped (its queue place and batch row freed), its stream cut."""
    data = {"description": "endless drone", "duration": "60"}
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{composer.url}/v1/compose",
            data=data,
            headers={"X-WeaveWave-Timeout-S": "0.001"},
            timeout=60,
        ) as response,
    ):
        assert response.status_code == 200  # the WAV header went out at once
        response.read()
    assert still_for(partial(metric, composer, "composer_generation_steps_total"))
    assert compose(composer, duration=1).status_code == 200


def test_normalize_loudness_answers_the_whole_clip_at_minus_14_lufs(
    composer: RunningService,
) -> None:
    from weavewave_common.loudness import loudness

    response = compose(composer, duration=4, seed=5, normalize="loudness")
    assert response.status_code == 200, response.text
    with av.open(io.BytesIO(response.content), mode="r") as container:
        rate = container.streams.audio[0].rate
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    samples = np.concatenate(frames, axis=1).astype(np.float32) / 32768.0
    assert samples.shape[1] == 4 * rate
    assert loudness(samples, rate) == pytest.approx(-14.0, abs=0.5)
    peak = compose(composer, duration=4, seed=5)  # the default: the model's own level
    assert peak.content != response.content
