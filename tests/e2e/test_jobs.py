"""Asynchronous jobs through a real gateway (its own jobs folder) in front of the stack's real
captioner and composer: progress, playback while composing, Range, cancel, restart, expiry and
signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import jobs_gateway, seconds_of, submit, wait_for
from tests.media_factory import image_bytes
from tests.metrics import metric, still_for
from tooling.supervise import free_port

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with jobs_gateway(stack, tmp_path_factory.mktemp("jobs"), GATEWAY_JUDGE_JOBS="true") as running:
        yield running.url


def test_a_job_runs_to_done_with_its_brief_and_audio(gateway: str) -> None:
    files = [("images", ("sunset.png", image_bytes(160, 120), "image/png"))]
    job = submit(gateway, {"prompt": "warm evening", "duration": "2"}, files)
    assert job["state"] == "queued" and job["progress"]["fraction"] == 0
    done = wait_for(gateway, job["id"], {"done", "failed"})
    assert done["state"] == "done", done
    assert done["progress"] == {
        "audio_seconds_ready": 2.0,
        "audio_seconds_total": 2.0,
        "fraction": 1.0,
    }
    assert done["brief"]["description"] and done["brief"]["media"]["images"]
    # the judge measured it against what was asked (a tiny model's noise: no beat or key to
    # expect, but its length, level and flaws are measured)
    analysis = done["analysis"]
    assert analysis["duration_s"] == pytest.approx(2.0, abs=0.02)
    assert analysis["duration_error_s"] == pytest.approx(0.0, abs=0.02)
    assert analysis["flaws"]["silent"] is False and analysis["level"]["integrated_lufs"] < 0
    audio = httpx.get(f"{gateway}{done['audio_url']}", timeout=30)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert seconds_of(audio.content) == pytest.approx(2.0, abs=0.02)
    part = httpx.get(f"{gateway}{done['audio_url']}", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == audio.content[:100]
    # every refusal in the error envelope (before: Starlette's plain-text 400 and 416)
    for asked, status, code in [
        ("bytes=abc", 400, "malformed_range"),
        ("pages=0-1", 400, "malformed_range"),
        (f"bytes={len(audio.content)}-", 416, "range_not_satisfiable"),
    ]:
        refused = httpx.get(f"{gateway}{done['audio_url']}", headers={"Range": asked})
        assert refused.status_code == status, refused.text
        assert refused.json()["error"]["code"] == code
    assert refused.headers["content-range"] == f"bytes */{len(audio.content)}"


def test_audio_plays_while_it_is_composed(gateway: str) -> None:
    job = submit(gateway, {"description": "a long calm drone", "duration": "20", "seed": "3"})
    composing = wait_for(gateway, job["id"], {"composing", "done", "failed"})
    while composing["state"] == "composing" and not composing["audio_url"]:
        time.sleep(0.05)  # composing, and the composer's stream not open yet
        composing = httpx.get(f"{gateway}/jobs/{job['id']}", timeout=10).json()
    assert composing["state"] == "composing", composing
    with httpx.stream("GET", f"{gateway}{composing['audio_url']}", timeout=120) as audio:
        pieces = audio.iter_bytes()
        body = next(pieces)
        mid = httpx.get(f"{gateway}/jobs/{job['id']}").json()
        assert mid["state"] == "composing"  # audio is flowing before the job is done
        assert mid["progress"]["audio_seconds_ready"] < 20
        body += b"".join(pieces)
    assert seconds_of(body) == pytest.approx(20.0, abs=0.02)
    assert wait_for(gateway, job["id"], {"done"})["state"] == "done"


def test_cancel_stops_the_generation(stack: Stack, gateway: str) -> None:
    job = submit(gateway, {"description": "an endless drone", "duration": "30"})
    wait_for(gateway, job["id"], {"composing"})
    cancelled = httpx.delete(f"{gateway}/jobs/{job['id']}", timeout=30).json()
    assert cancelled["state"] == "cancelled"
    assert still_for(partial(metric, stack.composer.url, "composer_generation_steps_total"))
    audio = httpx.get(f"{gateway}/jobs/{job['id']}/audio")
    assert audio.status_code == 409 and audio.json()["error"]["code"] == "no_audio"


def test_bad_requests_and_unknown_jobs(gateway: str) -> None:
    empty = httpx.post(f"{gateway}/jobs", data={"duration": "2"})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_request"
    too_long = httpx.post(f"{gateway}/jobs", data={"prompt": "x", "duration": "1e6"})
    assert too_long.status_code == 422
    hook = httpx.post(f"{gateway}/jobs", data={"prompt": "x", "webhook_url": "http://x/"})
    assert hook.status_code == 422 and hook.json()["error"]["code"] == "webhooks_disabled"
    for path in ("/jobs/nope", "/jobs/nope/audio"):
        missing = httpx.get(f"{gateway}{path}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"


def test_a_restart_loses_no_accepted_job(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    with jobs_gateway(stack, tmp_path, port) as first:
        url = first.url
        running = submit(url, {"description": "a drone", "duration": "15", "seed": "5"})
        queued = submit(url, {"prompt": "waiting in line", "duration": "1"})
        wait_for(url, running["id"], {"composing"})
        first.process.send_signal(signal.SIGKILL)  # a crash: no chance to tidy up
        first.process.wait(timeout=30)
    with jobs_gateway(stack, tmp_path, port) as second:
        for job in (running, queued):
            done = wait_for(second.url, job["id"], {"done", "failed"})
            assert done["state"] == "done", done
        audio = httpx.get(f"{second.url}/jobs/{running['id']}/audio", timeout=30)
        assert seconds_of(audio.content) == pytest.approx(15.0, abs=0.02)


def test_ended_jobs_expire(stack: Stack, tmp_path: Path) -> None:
    with jobs_gateway(stack, tmp_path, GATEWAY_JOB_TTL_S="1") as short_lived:
        job = submit(short_lived.url, {"description": "brief", "duration": "1"})
        wait_for(short_lived.url, job["id"], {"done"})
        deadline = time.monotonic() + 15
        while httpx.get(f"{short_lived.url}/jobs/{job['id']}").status_code != 404:
            assert time.monotonic() < deadline, "the job never expired"
            time.sleep(0.2)
        assert not (tmp_path / job["id"]).exists()


def test_a_signed_webhook_reports_the_end(stack: Stack, tmp_path: Path) -> None:
    received: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((body, self.headers["x-weavewave-signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/done"
    try:
        with jobs_gateway(
            stack,
            tmp_path,
            GATEWAY_WEBHOOK_SECRET="s3cret",
            GATEWAY_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        ) as hooked:
            job = submit(hooked.url, {"description": "x", "duration": "1", "webhook_url": hook})
            wait_for(hooked.url, job["id"], {"done"})
            deadline = time.monotonic() + 15
            while not received and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        server.shutdown()
    ((body, signature),) = received
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert json.loads(body)["id"] == job["id"] and json.loads(body)["state"] == "done"


def test_a_job_belongs_to_the_key_that_submitted_it(stack: Stack, tmp_path: Path) -> None:
    with jobs_gateway(stack, tmp_path, GATEWAY_API_KEYS="alpha,beta") as keyed:
        alpha, beta = ({"X-API-Key": key} for key in ("alpha", "beta"))
        response = httpx.post(
            f"{keyed.url}/jobs", data={"description": "mine", "duration": "1"}, headers=alpha
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        for method, path in (("GET", ""), ("GET", "/audio"), ("DELETE", "")):
            other = httpx.request(method, f"{keyed.url}/jobs/{job_id}{path}", headers=beta)
            assert other.status_code == 404, (method, path)
        assert httpx.get(f"{keyed.url}/jobs", headers=beta).json()["jobs"] == []
        listed = httpx.get(f"{keyed.url}/jobs", headers=alpha).json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]
        assert httpx.get(f"{keyed.url}/jobs/{job_id}", headers=alpha).status_code == 200
