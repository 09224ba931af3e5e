"""`mux=true`: the uploaded video comes back with the music as its soundtrack, its picture
copied packet for packet, through the real stack (and as a job)."""

from __future__ import annotations

import io
import time

import av
import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.media_factory import video_bytes

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
