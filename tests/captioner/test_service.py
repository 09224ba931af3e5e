"""The captioner as a real process on the tiny Qwen2.5-VL, through real vLLM, over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.captioner.conftest import SERVICE_ENV
from tests.media_factory import (
    image_bytes,
    png_bomb,
    scene_video_bytes,
    video_bytes,
    wav_bytes,
)
from tests.metrics import metric as read_metric
from tests.metrics import total, wait_for_metric
from tooling.supervise import RunningService, free_port
from weavewave_common.protocol import MusicBrief

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

Files = list[tuple[str, tuple[str, bytes, str]]]


def describe(
    service: RunningService,
    data: dict[str, str] | None = None,
    files: Files | None = None,
    **kwargs: Any,
) -> httpx.Response:
    kwargs.setdefault("timeout", 120)
    return httpx.post(f"{service.url}/v1/describe", data=data, files=files, **kwargs)


def brief_of(response: httpx.Response) -> MusicBrief:
    assert response.status_code == 200, response.text
    return MusicBrief.model_validate(response.json())


def png(name: str = "a.png", **kwargs: Any) -> tuple[str, tuple[str, bytes, str]]:
    return ("images", (name, image_bytes(**kwargs), "image/png"))


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_text_only(captioner: RunningService) -> None:
    brief = brief_of(describe(captioner, data={"prompt": "a rainy night in a quiet city"}))
    assert brief.description
    assert brief.model.endswith("tiny-qwen2.5-vl")
    assert 1 <= brief.usage.attempts <= 3 and brief.usage.prompt_tokens > 0
    assert brief.media.images == [] and brief.media.video is None
    assert brief.timings.total_s >= brief.timings.generate_s > 0


def test_one_image(captioner: RunningService) -> None:
    brief = brief_of(describe(captioner, files=[png(width=640, height=480)]))
    (facts,) = brief.media.images
    assert (facts.format, facts.width, facts.height) == ("PNG", 640, 480)
    assert facts.used_width * facts.used_height <= 50176
    assert brief.usage.prompt_tokens > 0


def test_several_images(captioner: RunningService) -> None:
    files = [png(f"{i}.png", seed=i, width=100 + i, height=80) for i in range(3)]
    brief = brief_of(describe(captioner, data={"prompt": "sunny"}, files=files))
    assert [(f.filename, f.width) for f in brief.media.images] == [
        ("0.png", 100),
        ("1.png", 101),
        ("2.png", 102),
    ]


def test_video_respects_the_frame_cap_and_reports_its_duration(captioner: RunningService) -> None:
    clip = video_bytes(seconds=8, fps=10)
    brief = brief_of(describe(captioner, files=[("video", ("clip.mp4", clip, "video/mp4"))]))
    video = brief.media.video
    assert video is not None
    assert video.duration_s == pytest.approx(8.0, abs=0.15)
    assert 2 <= video.frames_used <= 6
    assert (video.width, video.height, video.codec) == (160, 120, "h264")


def test_a_video_with_cuts_is_scored_in_sections_on_them(captioner: RunningService) -> None:
    clip = scene_video_bytes([6.0, 12.5], seconds=19, fps=10, gop=20)
    files = [("video", ("cuts.mp4", clip, "video/mp4"))]
    brief = brief_of(describe(captioner, files=files))
    assert [(s.start_s, s.end_s) for s in brief.sections] == [(0, 6.0), (6.0, 12.5), (12.5, 19.0)]
    assert all(s.description for s in brief.sections)
    assert brief.media.video is not None and brief.media.video.cuts_found == 2
    single = brief_of(describe(captioner, data={"score": "single"}, files=files))
    assert single.sections == [] and single.media.video is not None
    assert single.media.video.cuts_found is None
    one_scene = [("video", ("still.mp4", scene_video_bytes([], seconds=8), "video/mp4"))]
    assert brief_of(describe(captioner, files=one_scene)).sections == []
    micro = scene_video_bytes([i * 0.1 for i in range(1, 150)], seconds=15, fps=10, gop=20)
    merged = brief_of(describe(captioner, files=[("video", ("m.mp4", micro, "video/mp4"))]))
    assert len(merged.sections) <= 2
    # a scene a frame: the scan stops a stretch at the first cut showing the stretch's end
    # colours (the palette repeats), so it reports some of the 149, never more
    assert merged.media.video is not None and merged.media.video.cuts_found is not None
    assert 10 <= merged.media.video.cuts_found <= 149
    assert_error(describe(captioner, data={"score": "every-frame"}, files=files), 422)


def test_image_video_and_text_together(captioner: RunningService) -> None:
    files = [png(), ("video", ("v.mp4", video_bytes(seconds=3, fps=10), "video/mp4"))]
    brief = brief_of(describe(captioner, data={"prompt": "make it epic"}, files=files))
    assert len(brief.media.images) == 1
    assert brief.media.video is not None and brief.media.video.frames_used == 3


def test_audio_with_a_model_that_cannot_hear(captioner: RunningService) -> None:
    files = [("audio", ("hum.wav", wav_bytes(seconds=1.5), "audio/wav"))]
    brief = brief_of(describe(captioner, files=files))
    assert brief.media.audio is not None
    assert not brief.media.audio.used
    assert brief.media.audio.duration_s == pytest.approx(1.5, abs=0.05)
    assert any("cannot hear" in w for w in brief.warnings)


def test_bad_input_gets_clear_4xx_and_the_service_stays_up(captioner: RunningService) -> None:
    clip = video_bytes(seconds=4, fps=5)
    cases: list[tuple[int, dict[str, str] | None, Files | None]] = [
        (415, None, [("images", ("x.png", b"\x89PNG garbage" * 50, "image/png"))]),
        (413, None, [("images", ("bomb.png", png_bomb(), "image/png"))]),
        (415, None, [("video", ("cut.mp4", clip[: len(clip) // 3], "video/mp4"))]),
        (413, None, [("video", ("long.mp4", video_bytes(seconds=25, fps=2), "video/mp4"))]),
        (415, None, [("video", ("still.png", image_bytes(), "video/mp4"))]),
        (422, None, [png(f"{i}.png") for i in range(4)]),
        (422, None, None),
        (422, {"prompt": "   "}, None),
        (422, {"prompt": "x" * 2001}, None),
    ]
    for status, data, files in cases:
        assert_error(describe(captioner, data=data, files=files), status)
    malformed = httpx.post(
        f"{captioner.url}/v1/describe",
        content=b'--xx\r\nContent-Disposition: form-data; name="images"\r\n\r\nno end',
        headers={"content-type": "multipart/form-data; boundary=xx"},
    )
    assert malformed.status_code in (400, 422)
    assert "error" in malformed.json()
    assert httpx.get(f"{captioner.url}/readyz").status_code == 200
    brief_of(describe(captioner, data={"prompt": "still alive"}))


def test_four_concurrent_requests_all_succeed(captioner: RunningService) -> None:
    """Batched together in the engine, each answer is still its own request's."""
    sizes = [(96 + 16 * i, 64 + 8 * i) for i in range(4)]

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=captioner.url, timeout=120) as client:
            calls = [
                client.post(
                    "/v1/describe",
                    data={"prompt": f"song {i}"},
                    files=[png(f"{i}.png", width=width, height=height, seed=i)],
                    headers={"X-Request-ID": f"concurrent-{i}"},
                )
                for i, (width, height) in enumerate(sizes)
            ]
            return list(await asyncio.gather(*calls))

    for i, response in enumerate(asyncio.run(run())):
        assert response.headers["x-request-id"] == f"concurrent-{i}"
        (image,) = brief_of(response).media.images
        assert (image.filename, image.width, image.height) == (f"{i}.png", *sizes[i])


def test_request_id_is_echoed_and_logged(captioner: RunningService) -> None:
    response = describe(
        captioner, data={"prompt": "trace me"}, headers={"X-Request-ID": "trace-abc-123"}
    )
    assert response.headers["x-request-id"] == "trace-abc-123"
    assert '"request_id": "trace-abc-123"' in captioner.log()


def test_metrics_and_openapi(captioner: RunningService) -> None:
    briefs = total(metrics_text(captioner), "captioner_briefs_total")
    prompt_tokens = total(metrics_text(captioner), "captioner_tokens_total")
    describe(captioner, data={"prompt": "count me"})
    metrics = metrics_text(captioner)
    assert total(metrics, "captioner_briefs_total") == briefs + 1
    assert total(metrics, "captioner_tokens_total") > prompt_tokens
    assert "captioner_requests_in_flight" in metrics
    spec = httpx.get(f"{captioner.url}/openapi.json").json()
    operation = spec["paths"]["/v1/describe"]["post"]
    assert operation["operationId"] == "describe"
    assert {"200", "413", "415", "422", "503"} <= set(operation["responses"])


def test_a_client_that_leaves_cancels_its_brief(captioner: RunningService) -> None:
    cancelled = 'captioner_failures_total{code="cancelled"}'
    before = read_metric(captioner.url, cancelled) if cancelled in metrics_text(captioner) else 0
    files = [png(), ("video", ("v.mp4", video_bytes(seconds=4, fps=10), "video/mp4"))]
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
        describe(
            captioner, data={"prompt": "leaving"}, files=files, timeout=httpx.Timeout(30, read=0.05)
        )
    assert wait_for_metric(captioner.url, cancelled, before + 1) == before + 1
    assert wait_for_metric(captioner.url, "captioner_requests_in_flight", 0) == 0


def test_one_request_id_sent_twice_is_two_requests(captioner: RunningService) -> None:
    """The client's X-Request-ID is for tracing only: two requests under one id at once, and
    one leaving, must not stop the other's generation (vLLM aborts every request by an id)."""
    aborted = 'captioner_generations_total{finish="abort"}'
    before = read_metric(captioner.url, aborted) if aborted in metrics_text(captioner) else 0
    data, headers = {"prompt": "twins"}, {"X-Request-ID": "twin-id"}
    clip = video_bytes(seconds=4, fps=10)  # a second or more of work each: time to overlap

    async def overlapping(client: httpx.AsyncClient) -> httpx.Response | None:
        """Send the twins; once both run, the first leaves. None: one ended before the other
        started (a busy host serialises them), so they never ran at once."""

        def post() -> Coroutine[Any, Any, httpx.Response]:
            files = [("video", ("v.mp4", clip, "video/mp4"))]
            return client.post("/v1/describe", data=data, files=files, headers=headers)

        leaving, staying = asyncio.create_task(post()), asyncio.create_task(post())
        deadline = time.monotonic() + 60
        while "captioner_requests_in_flight 2.0" not in (await client.get("/metrics")).text:
            if leaving.done() or staying.done() or time.monotonic() > deadline:
                await asyncio.gather(leaving, staying, return_exceptions=True)
                return None
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # both are generating (the same steps, in lockstep)
        leaving.cancel()  # its connection closes: the captioner cancels it
        return await staying

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(base_url=captioner.url, timeout=120) as client:
            for _ in range(5):
                staying = await overlapping(client)
                if staying is not None:
                    return staying
        raise AssertionError("they never ran at once")

    staying = asyncio.run(run())
    assert staying.status_code == 200, staying.text
    assert brief_of(staying).usage.attempts >= 1
    aborted_now = read_metric(captioner.url, aborted) if aborted in metrics_text(captioner) else 0
    assert aborted_now == before, "the request that stayed was aborted with the one that left"
    assert wait_for_metric(captioner.url, "captioner_requests_in_flight", 0) == 0


def metrics_text(service: RunningService) -> str:
    return httpx.get(f"{service.url}/metrics").text


def test_the_callers_deadline_stops_the_brief(captioner: RunningService) -> None:
    """The gateway says how long it will wait (X-WeaveWave-Timeout-S); past it, the brief is
    aborted here too, whether or not a disconnect ever arrives."""
    files = [png(), ("video", ("v.mp4", video_bytes(seconds=4, fps=10), "video/mp4"))]
    response = describe(
        captioner,
        data={"prompt": "in a hurry"},
        files=files,
        headers={"X-WeaveWave-Timeout-S": "0.2"},
    )
    assert_error(response, 504)
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert wait_for_metric(captioner.url, "captioner_requests_in_flight", 0) == 0
    ignored = describe(captioner, data={"prompt": "x"}, headers={"X-WeaveWave-Timeout-S": "soon"})
    assert ignored.status_code == 200  # an unreadable deadline is no deadline


def test_an_extremely_elongated_image_is_padded_not_refused(captioner: RunningService) -> None:
    """Qwen2.5-VL's resize refuses more than 200:1; the service pads into range first (it
    used to pass the strip on, and the engine's error came back as a 500)."""
    brief = brief_of(describe(captioner, files=[png("strip.png", width=4000, height=10)]))
    (facts,) = brief.media.images
    assert (facts.width, facts.height) == (4000, 10)
    assert max(facts.used_width, facts.used_height) <= 200 * min(
        facts.used_width, facts.used_height
    )


def test_a_failed_load_exits_non_zero(tmp_path: Path) -> None:
    """So that a restart policy retries it (it used to keep serving 503 forever)."""
    env = {
        **os.environ,
        **SERVICE_ENV,
        "CAPTIONER_MODEL": str(tmp_path / "no-such-model"),
        "CAPTIONER_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "captioner"], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 1
    assert b"the model failed to load" in done.stderr + done.stdout


def children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc (the engine core is one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [grandchild for child in found for grandchild in descendants(child)]


def alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def test_sigterm_while_the_model_loads_stops_at_once_and_leaves_no_child(
    tiny_vlm: Path, tmp_path: Path
) -> None:
    """A service stopped while loading (a rollout, a scale-down) must not finish the load first,
    nor leave the engine core it started holding the accelerator."""
    port = free_port()
    env = {
        **os.environ,
        **SERVICE_ENV,
        "CAPTIONER_MODEL": str(tiny_vlm),
        "CAPTIONER_PORT": str(port),
    }
    log = (tmp_path / "captioner.log").open("wb")
    service = subprocess.Popen([sys.executable, "-m", "captioner"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not (started := descendants(service.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)  # the engine core is started early in the load
        assert started, "no engine process was started"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 503  # still loading
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        seen = set(started) | set(descendants(service.pid))
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in seen if alive(pid)], "an engine process outlived the service"
    finally:
        if service.poll() is None:
            service.kill()
        for pid in descendants(service.pid):
            os.kill(pid, signal.SIGKILL)
        log.close()


def test_readyz_turns_false_when_the_engine_core_dies(captioner: RunningService) -> None:
    """Runs last among the tests of the shared service: it kills that service's engine."""
    assert httpx.get(f"{captioner.url}/readyz", timeout=5).status_code == 200
    for child in children(captioner.process.pid):
        os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = httpx.get(f"{captioner.url}/readyz", timeout=5)
        if ready.status_code == 503:
            break
        time.sleep(0.5)
    assert ready.status_code == 503, ready.text
    assert "engine core has died" in ready.text
    assert_error(describe(captioner, data={"prompt": "after"}), 503)
