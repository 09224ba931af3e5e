"""`mux=true`: the uploaded video comes back with the music as its soundtrack, its picture
copied packet for packet, through the real stack (and as a job)."""

from __future__ import annotations

import io
import time

import av
import httpx
import numpy as np
import pytest

from tests.e2e.conftest import Stack
from tests.media_factory import scene_video_bytes, soundtrack_with_speech, video_bytes

pytestmark = [pytest.mark.engine, pytest.mark.timeout(300)]


def video_packets(body: bytes) -> list[bytes]:
    with av.open(io.BytesIO(body), mode="r") as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def test_the_video_comes_back_with_the_music_as_its_soundtrack(stack: Stack) -> None:
    clip = video_bytes(seconds=3.0, fps=10, with_audio=True)  # its own soundtrack is replaced
    response = httpx.post(
        f"{stack.gateway.url}/generate",
        data={"prompt": "a sunny walk", "mux": "true", "seed": "2"},
        files=[("video", ("walk.mp4", clip, "video/mp4"))],
        timeout=180,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content), mode="r") as muxed:
        assert len(muxed.streams.video) == 1 and len(muxed.streams.audio) == 1
        audio = muxed.streams.audio[0]
        assert audio.codec_context.name == "aac"
        seconds = sum(f.samples for f in muxed.decode(audio)) / audio.rate
    assert seconds == pytest.approx(3.0, abs=0.1)  # as long as the video
    assert video_packets(response.content) == video_packets(clip)  # the picture, not re-encoded


def test_mux_needs_a_video(stack: Stack) -> None:
    for path, data in (("/generate", {"prompt": "x"}), ("/compose", {"description": "x"})):
        response = httpx.post(f"{stack.gateway.url}{path}", data={**data, "mux": "true"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "mux_without_video"


def test_a_muxed_job(stack: Stack) -> None:
    clip = video_bytes(seconds=2.0, fps=10)
    job = httpx.post(
        f"{stack.gateway.url}/jobs",
        data={"mux": "true"},
        files=[("video", ("clip.mp4", clip, "video/mp4"))],
        timeout=60,
    ).json()
    deadline = time.monotonic() + 180
    while (state := httpx.get(f"{stack.gateway.url}/jobs/{job['id']}").json())["state"] not in (
        "done",
        "failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["state"] == "done", state
    assert state["media_type"] == "video/mp4"
    body = httpx.get(f"{stack.gateway.url}{state['audio_url']}").content
    assert video_packets(body) == video_packets(clip)


def test_format_mp4_is_mux(stack: Stack) -> None:
    clip = video_bytes(seconds=1.5, fps=10)
    response = httpx.post(
        f"{stack.gateway.url}/generate",
        data={"prompt": "x", "format": "mp4"},
        files=[("video", ("clip.mp4", clip, "video/mp4"))],
        timeout=180,
    )
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert video_packets(response.content) == video_packets(clip)


def soundtrack(body: bytes, rate: int = 16000) -> np.ndarray:
    """A video's audio, mono at `rate`."""
    with av.open(io.BytesIO(body), mode="r") as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces = [
            out.to_ndarray()[0]
            for frame in container.decode(audio=0)
            for out in [*resampler.resample(frame)]
        ]
        pieces += [out.to_ndarray()[0] for out in resampler.resample(None)]
    return np.concatenate(pieces)


def level_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64))) + 1e-12))


LINES = [(1.0, "The kitchen was quiet this morning."), (7.0, "And then everything changed.")]


def test_a_video_with_voices_keeps_them_over_ducked_music(stack: Stack) -> None:
    track, spoken = soundtrack_with_speech(12.0, LINES)
    clip = scene_video_bytes([], seconds=12, audio=track)
    files = [("video", ("talk.mp4", clip, "video/mp4"))]
    url = f"{stack.gateway.url}/generate"
    kept = httpx.post(url, data={"mux": "true", "seed": "5"}, files=files, timeout=180)
    assert kept.status_code == 200, kept.text
    assert kept.headers["x-weavewave-original-audio"] == "speech"  # the default with voices
    original, mix = soundtrack(clip), soundtrack(kept.content)
    length = min(len(original), len(mix))
    original, mix = original[:length], mix[:length]
    for start, end in spoken:  # the voices as loud as they were
        inner = slice(int((start + 0.1) * 16000), int((end - 0.1) * 16000))
        assert abs(level_db(mix[inner]) - level_db(original[inner])) <= 1.0
    between = slice(int(5.0 * 16000), int(6.5 * 16000))  # no voice: the music, matched
    assert level_db(mix[between]) > level_db(original[between]) + 20

    alone = httpx.post(
        url, data={"mux": "true", "seed": "5", "keep_speech": "false"}, files=files, timeout=180
    )
    assert alone.headers["x-weavewave-original-audio"] == "none"
    first = slice(int((spoken[0][0] + 0.1) * 16000), int((spoken[0][1] - 0.1) * 16000))
    assert abs(level_db(soundtrack(alone.content)[first]) - level_db(original[first])) > 1.0

    silent = [("video", ("mute.mp4", scene_video_bytes([], seconds=3), "video/mp4"))]
    mute = httpx.post(url, data={"mux": "true", "keep_speech": "true"}, files=silent, timeout=180)
    assert mute.status_code == 200 and mute.headers["x-weavewave-original-audio"] == "none"
    for data, code in (
        ({"prompt": "x", "keep_speech": "true"}, "keep_without_video"),
        ({"keep_original_audio": "all"}, "keep_without_mux"),
        ({"mux": "true", "keep_speech": "true", "keep_original_audio": "all"}, "keep_conflict"),
    ):
        refused = httpx.post(url, data=data, files=files if "prompt" not in data else None)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == code
