"""POST /generate and friends through the gateway, with the real captioner and composer."""

from __future__ import annotations

import io
import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import av
import httpx
import pytest

from tests.e2e.browser import studio_page
from tests.e2e.conftest import Stack
from tests.e2e.jobs import submit, wait_for
from tests.media_factory import (
    cadence,
    click_track,
    image_bytes,
    scene_video_bytes,
    video_bytes,
    wav_bytes,
    wav_of,
)
from tests.metrics import metric, still_for, total
from weavewave_common.protocol import MusicBrief

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

Files = list[tuple[str, tuple[str, bytes, str]]]


def post(
    stack: Stack,
    path: str,
    data: dict[str, Any] | None = None,
    files: Files | None = None,
    **kwargs: Any,
) -> httpx.Response:
    fields = {k: str(v) for k, v in (data or {}).items()}
    return httpx.post(f"{stack.gateway.url}{path}", data=fields, files=files, timeout=180, **kwargs)


def seconds_of(body: bytes) -> float:
    with av.open(io.BytesIO(body), mode="r") as container:
        rate = container.streams.audio[0].rate
        return sum(frame.samples for frame in container.decode(audio=0)) / rate


def channels_of(body: bytes) -> int:
    with av.open(io.BytesIO(body), mode="r") as container:
        return int(container.streams.audio[0].channels)


def brief_of(response: httpx.Response) -> MusicBrief:
    return MusicBrief.model_validate(json.loads(unquote(response.headers["x-weavewave-brief"])))


def png() -> tuple[str, tuple[str, bytes, str]]:
    return ("images", ("sunset.png", image_bytes(320, 240), "image/png"))


def test_image_and_text_stream_a_wav_of_the_requested_duration(stack: Stack) -> None:
    started = time.monotonic()
    arrivals = []
    body = b""
    with httpx.stream(
        "POST",
        f"{stack.gateway.url}/generate",
        timeout=180,
        data={"prompt": "warm and nostalgic", "duration": "3", "seed": "7"},
        files=[png()],
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "audio/wav"
        for piece in response.iter_raw():
            arrivals.append(time.monotonic() - started)
            body += piece
    assert seconds_of(body) == pytest.approx(3.0, abs=0.02)
    assert response.headers["x-channels"] == "2" and channels_of(body) == 2  # a stereo model
    assert len(arrivals) >= 3 and arrivals[0] < arrivals[-1]  # streamed, not one block
    brief = brief_of(response)
    assert unquote(response.headers["x-weavewave-description"]) == brief.description
    assert brief.media.images[0].width == 320
    assert response.headers["x-seed"] == "7"
    assert response.headers["x-weavewave-audio-use"] == "none"


def test_video_with_auto_duration_lasts_as_long_as_the_video(stack: Stack) -> None:
    clip = video_bytes(seconds=4, fps=10)
    response = post(
        stack,
        "/generate",
        {"duration": "auto", "format": "flac"},
        [("video", ("clip.mp4", clip, "video/mp4"))],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/flac"
    assert seconds_of(response.content) == pytest.approx(4.0, abs=0.02)
    assert brief_of(response).media.video is not None


def test_a_video_with_cuts_is_scored_in_sections_that_change_on_them(stack: Stack) -> None:
    clip = scene_video_bytes([6.0, 12.5], seconds=19, fps=10, gop=20)
    files: Files = [("video", ("cuts.mp4", clip, "video/mp4"))]
    described = post(stack, "/describe", files=files)
    assert described.status_code == 200, described.text
    planned = MusicBrief.model_validate(described.json()).sections
    assert [(s.start_s, s.end_s) for s in planned] == [(0, 6.0), (6.0, 12.5), (12.5, 19.0)]

    served = httpx.get(f"{stack.gateway.url}/models").json()["composers"]
    assert served[0]["follows_sections"] is True
    scored = post(stack, "/generate", {"duration": "auto", "seed": 3}, files)
    assert scored.status_code == 200, scored.text
    assert scored.headers["x-sections"] == "0.000,6.000,12.500"  # where the composer changed
    assert seconds_of(scored.content) == pytest.approx(19.0, abs=0.02)
    # a job keeps the brief whole (the header may be over its size), its sections as realised
    job = submit(stack.gateway.url, {"duration": "auto", "seed": "3"}, files)
    done = wait_for(stack.gateway.url, job["id"], {"done"})
    realised = [(s["start_s"], s["end_s"]) for s in done["brief"]["sections"]]
    assert realised == [(0, 6.0), (6.0, 12.5), (12.5, 19.0)]

    # an edited brief: a boundary moved, a section rewritten, composed again as it is
    edited = described.json()
    edited["sections"][0]["end_s"] = edited["sections"][1]["start_s"] = 5.01
    edited["sections"][1]["description"] = "A lone cello, slow and grave."
    again = post(stack, "/generate", {"brief": json.dumps(edited), "duration": 13, "seed": 3})
    assert again.status_code == 200, again.text
    assert again.headers["x-sections"] == "0.000,5.000,12.500"  # on the codec's 20 ms frames
    # a job of it records the brief whole as composed: the boundary where the audio has it
    job = submit(stack.gateway.url, {"brief": json.dumps(edited), "duration": "13", "seed": "3"})
    composed = wait_for(stack.gateway.url, job["id"], {"done"})["brief"]
    assert [(s["start_s"], s["end_s"]) for s in composed["sections"]] == [
        (0, 5.0),
        (5.0, 12.5),
        (12.5, 13.0),
    ]
    assert composed["sections"][1]["description"] == "A lone cello, slow and grave."
    assert composed["model"] == edited["model"] and composed["media"] == edited["media"]
    # a brief written by hand (no captioner fields) is carried back as it was composed
    by_hand = {
        "description": "Calm strings.",
        "sections": [
            {"start_s": 0, "end_s": 2.004, "description": "Strings alone."},
            {"start_s": 2.004, "end_s": 4, "description": "Drums come in."},
        ],
    }
    written = post(stack, "/generate", {"brief": json.dumps(by_hand), "duration": 4, "seed": 3})
    assert written.status_code == 200, written.text
    carried = json.loads(unquote(written.headers["x-weavewave-brief"]))
    assert [(s["start_s"], s["end_s"]) for s in carried["sections"]] == [(0, 2.0), (2.0, 4.0)]
    assert carried["description"] == "Calm strings."

    single = post(stack, "/generate", {"duration": 4, "score": "single"}, files)
    assert single.status_code == 200, single.text
    assert "x-sections" not in single.headers and brief_of(single).sections == []
    unknown = post(stack, "/generate", {"score": "every-cut"}, files)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid_input"
    short = post(stack, "/generate", {"duration": 5}, files)  # the music ends before a cut
    assert short.status_code == 200 and "x-sections" not in short.headers


def test_analyze_measures_a_take_through_the_gateway(stack: Stack) -> None:
    take = cadence(9, True, 8) + click_track(100, 8)  # A minor, 100 BPM
    files: Files = [("audio", ("take.wav", wav_of(take, 22050), "audio/wav"))]
    answer = post(stack, "/analyze", {"tempo_bpm": 100, "key": "A minor"}, files)
    assert answer.status_code == 200, answer.text
    assert answer.json()["key"]["agreement"] == "match"
    assert answer.json()["tempo"]["agreement"] in ("match", "double", "half")


def test_everything_at_once(stack: Stack) -> None:
    files: Files = [
        png(),
        ("images", ("b.jpg", image_bytes(200, 100, "JPEG"), "image/jpeg")),
        ("video", ("v.mp4", video_bytes(seconds=2, fps=10), "video/mp4")),
        ("audio", ("hum.wav", wav_bytes(1.0), "audio/wav")),
    ]
    response = post(stack, "/generate", {"prompt": "dreamy", "duration": 2, "format": "mp3"}, files)
    assert response.status_code == 200, response.text
    assert seconds_of(response.content) == pytest.approx(2.0, abs=0.08)
    brief = brief_of(response)
    assert len(brief.media.images) == 2 and brief.media.video and brief.media.audio
    assert response.headers["x-weavewave-audio-use"] == "unused"  # neither model takes audio


def test_text_only_and_ogg(stack: Stack) -> None:
    response = post(
        stack, "/generate", {"prompt": "epic trailer music", "duration": 2, "format": "ogg"}
    )
    assert response.status_code == 200, response.text
    assert seconds_of(response.content) == pytest.approx(2.0, abs=0.03)
    assert channels_of(response.content) == 2


@pytest.mark.parametrize("audio_format", ["flac", "mp3"])
def test_every_format_carries_both_channels(stack: Stack, audio_format: str) -> None:
    response = post(
        stack, "/compose", {"description": "wide pads", "duration": 1, "format": audio_format}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-channels"] == "2"
    assert channels_of(response.content) == 2


def test_describe_previews_the_brief(stack: Stack) -> None:
    response = post(stack, "/describe", {"prompt": "a quiet forest"}, [png()])
    assert response.status_code == 200, response.text
    assert MusicBrief.model_validate(response.json()).media.images


def test_compose_from_text_alone(stack: Stack) -> None:
    response = post(stack, "/compose", {"description": "lofi beat", "duration": 1.5, "seed": 3})
    assert response.status_code == 200, response.text
    assert seconds_of(response.content) == pytest.approx(1.5, abs=0.02)
    again = post(stack, "/compose", {"description": "lofi beat", "duration": 1.5, "seed": 3})
    assert again.content == response.content


def test_request_id_reaches_all_three_services(stack: Stack) -> None:
    response = post(
        stack,
        "/generate",
        {"prompt": "trace", "duration": 1},
        headers={"X-Request-ID": "e2e-trace-42"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "e2e-trace-42"
    for service in ("gateway", "captioner", "composer"):
        assert "e2e-trace-42" in stack.log(service), service


def test_user_mistakes_get_the_error_envelope(stack: Stack) -> None:
    cases: list[tuple[int, dict[str, Any], Files | None]] = [
        (422, {}, None),
        (422, {"prompt": "x", "duration": "forever"}, None),
        (422, {"prompt": "x", "duration": 999}, None),
        (422, {"prompt": "x", "duration": "auto"}, None),
        (422, {"prompt": "x", "format": "aiff"}, None),
        (422, {"prompt": "x", "colour": "blue"}, None),
        (415, {}, [("images", ("fake.png", b"<html>not a picture</html>", "image/png"))]),
        (415, {}, [("video", ("fake.mp4", image_bytes(), "video/mp4"))]),
        (422, {}, [("images", ("empty.png", b"", "image/png"))]),
        (413, {}, [("images", ("huge.png", image_bytes(700, 700), "image/png"))]),
    ]
    for status, data, files in cases:
        response = post(stack, "/generate", data, files)
        assert response.status_code == status, (data, response.text)
        assert response.json()["error"]["request_id"] == response.headers["x-request-id"]
    malformed = httpx.post(
        f"{stack.gateway.url}/generate",
        timeout=30,
        content=b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_multipart"
    not_a_form = httpx.post(f"{stack.gateway.url}/generate", json={"prompt": "x"})
    assert not_a_form.status_code == 400
    assert not_a_form.json()["error"]["code"] == "not_multipart"


def test_disconnect_mid_stream_stops_the_composer(stack: Stack) -> None:
    with httpx.stream(
        "POST",
        f"{stack.gateway.url}/compose",
        timeout=60,
        data={"description": "long drone", "duration": "30"},
    ) as response:
        pieces = response.iter_raw()
        next(pieces)
        next(pieces)
        assert metric(stack.composer.url, "composer_active_generations") == 1
    assert still_for(partial(metric, stack.composer.url, "composer_generation_steps_total"))


def test_composer_down_is_503_and_the_gateway_recovers(stack: Stack) -> None:
    stack.stop_composer()
    try:
        down = post(stack, "/compose", {"description": "x", "duration": 1})
        assert down.status_code == 503
        assert down.headers["retry-after"]
        assert down.json()["error"]["code"] == "composer_unavailable"
        assert httpx.get(f"{stack.gateway.url}/readyz").status_code == 503
        # degraded, not gone: the studio stays reachable and says what is restarting
        degraded = httpx.get(f"{stack.gateway.url}/readyz", params={"degraded": "ok"})
        assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
        assert "composer" in degraded.json()["detail"]
        with studio_page(stack.gateway.url) as page:
            page.wait_for_selector("#service-status:not([hidden])", timeout=10_000)
            assert "composer" in (page.text_content("#service-status") or "")
    finally:
        stack.start_composer()
    assert post(stack, "/compose", {"description": "x", "duration": 1}).status_code == 200
    assert httpx.get(f"{stack.gateway.url}/readyz").status_code == 200


def test_no_temporary_file_outlives_a_request(stack: Stack) -> None:
    big = [("images", ("a.png", image_bytes(320, 240), "image/png"))]  # spooled to disk (> 1 KB)
    assert post(stack, "/generate", {"prompt": "x", "duration": 1}, big).status_code == 200
    assert post(stack, "/describe", {"prompt": "x"}, big).status_code == 200
    bad = [("video", ("fake.mp4", image_bytes(), "video/mp4"))]
    assert post(stack, "/generate", {}, bad).status_code == 415
    with httpx.stream(
        "POST",
        f"{stack.gateway.url}/generate",
        timeout=60,
        data={"prompt": "x", "duration": "20"},
        files=big,
    ) as response:
        next(response.iter_raw())  # leave mid-stream
    deadline = time.monotonic() + 10
    while open_temp_files(stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert open_temp_files(stack) == []
    assert list(stack.gateway_tmp.iterdir()) == []


def open_temp_files(stack: Stack) -> list[str]:
    """The gateway's open files in its TMPDIR (unnamed O_TMPFILE files show up here too)."""
    found = []
    for fd in Path(f"/proc/{stack.gateway.process.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith(str(stack.gateway_tmp)):
            found.append(target)
    return found


LYRICS = "[verse]\nLanterns  in the rain,\nwe walk on\n\n[chorus]\nStay, stay  "


def test_a_song_brief_keeps_the_users_lyrics_and_a_composer_that_cannot_sing_says_so(
    stack: Stack,
) -> None:
    described = post(stack, "/describe", {"lyrics": LYRICS, "prompt": "a rainy walk"})
    assert described.status_code == 200, described.text
    assert described.json()["lyrics"] == LYRICS  # through both services, exactly as given
    written = post(stack, "/describe", {"prompt": "a rainy walk", "vocals": "true", "duration": 45})
    assert written.status_code == 200, written.text  # the tiny model writes no valid song:
    assert any("no lyrics were written" in w for w in written.json()["warnings"])  # it says so
    served = httpx.get(f"{stack.gateway.url}/models").json()
    assert served["composer_sings"] is False
    for path, fields in (
        ("/generate", {"prompt": "a rainy walk", "vocals": "true", "duration": 1}),
        ("/generate", {"lyrics": LYRICS, "duration": 1}),
        ("/jobs", {"lyrics": LYRICS, "duration": 1}),
        ("/compose", {"description": "a rainy walk", "lyrics": LYRICS, "duration": 1}),
    ):
        refused = post(stack, path, fields)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json()["error"]["code"] == "vocals_unsupported"
        assert "does not sing" in refused.json()["error"]["message"]


def test_a_duration_past_the_composers_own_limit_is_refused_before_any_model_works(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Before: the gateway checked only its own limit, so 45 s (under this gateway's 120, over
    the composer's 30) spent a brief before the composer refused it, and a job was accepted."""
    from tests.e2e.jobs import jobs_gateway

    def briefs() -> float:
        page = httpx.get(f"{stack.captioner.url}/metrics").text
        return total(page, "captioner_briefs_total") + total(page, "captioner_failures_total")

    jobs = tmp_path_factory.mktemp("jobs")
    with jobs_gateway(stack, jobs, GATEWAY_MAX_DURATION_S="120") as gateway:
        before = briefs()
        asked = {"prompt": "a slow waltz", "duration": "45"}
        for path in ("/generate", "/jobs"):
            refused = httpx.post(f"{gateway.url}{path}", data=asked, timeout=60)
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["code"] == "duration_out_of_range"
            assert "at most 30 s" in error["message"]
        composed = {"description": "a slow waltz", "duration": "45"}
        refused = httpx.post(f"{gateway.url}/compose", data=composed, timeout=60)
        assert refused.json()["error"]["code"] == "duration_out_of_range"
        assert briefs() == before
