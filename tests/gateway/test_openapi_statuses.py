"""Every status a route answers is in the OpenAPI document (generated clients type on it).

The in-process gateway is toured with the requests that make each route refuse (no key, a
revoked key, over the rate limit, a bad form, too big, unknown job, upstream down); every
status it answered is then looked up in what the document declares for that operation.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import GatewaySettings

KEY = {"X-API-Key": "key"}


class Recorder:
    """Every answer's (method, path, status), from the client's side."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, response: httpx.Response) -> None:
        request = response.request
        self.seen.add((request.method, request.url.path, str(response.status_code)))


def template_of(path: str, templates: list[str]) -> str | None:
    for template in templates:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return template
    return None


def tour(client: TestClient) -> None:
    form = {"description": "calm piano", "duration": "1"}
    for method, path in [
        ("POST", "/generate"),
        ("POST", "/describe"),
        ("POST", "/compose"),
        ("POST", "/jobs"),
        ("GET", "/jobs/nope"),
        ("GET", "/jobs/nope/audio"),
        ("DELETE", "/jobs/nope"),
    ]:
        client.request(method, path)  # 401
        client.request(method, path, headers={"X-API-Key": "old"})  # 403
        client.request(method, path, headers=KEY)  # 404 / 422
    client.post("/compose", data=form, headers=KEY)  # composer down: 503
    client.post("/describe", data={"prompt": "x"}, headers=KEY)  # captioner down: 503
    client.post("/generate", content=b"x" * 5000, headers={**KEY, "content-type": "text/plain"})
    client.post("/generate", content=b"not a form", headers={**KEY, "content-type": "text/plain"})
    client.post("/compose", data={**form, "duration": "-1"}, headers=KEY)
    job = client.post("/jobs", data=form, headers=KEY).json()
    client.get(f"/jobs/{job['id']}", headers=KEY)
    client.get(f"/jobs/{job['id']}/audio", headers=KEY)  # 409: not ready, or failed
    client.delete(f"/jobs/{job['id']}", headers=KEY)
    for _ in range(40):  # past the rate limit: 429 on every route
        for method, path in [
            ("POST", "/generate"),
            ("POST", "/jobs"),
            ("GET", "/jobs/x"),
            ("GET", "/jobs/x/audio"),
            ("DELETE", "/jobs/x"),
            ("POST", "/describe"),
            ("POST", "/compose"),
        ]:
            client.request(method, path, headers=KEY)


def test_every_status_seen_is_declared(tmp_path: Path) -> None:
    settings = GatewaySettings(
        captioner_url="http://127.0.0.1:9",
        composer_url="http://127.0.0.1:9",
        describe_retries=0,
        api_keys=["key"],
        revoked_api_keys=["old"],
        rate_limit_per_minute=30,
        max_request_bytes=4096,
        jobs_dir=str(tmp_path / "jobs"),
    )
    recorder = Recorder()
    with TestClient(create_app(settings)) as client:
        client.event_hooks = {"response": [recorder]}
        tour(client)
        paths = client.get("/openapi.json").json()["paths"]
    seen = {(m, template_of(p, list(paths)) or p, s) for m, p, s in recorder.seen}
    undeclared = sorted(
        (method, path, status)
        for method, path, status in seen
        if path in paths and status not in paths[path][method.lower()]["responses"]
    )
    assert undeclared == [], undeclared
    assert {status for _, path, status in seen if path.startswith("/jobs")} >= {
        "401",
        "403",
        "404",
        "429",
    }


def test_the_document_needs_no_hand_edits_for_typescript_generators(tmp_path: Path) -> None:
    """Before: no `servers` entry, `progress.fraction` optional (always sent), and none of the
    response headers a client reads (the brief, the seed, a job's Location) declared."""
    settings = GatewaySettings(
        captioner_url="http://127.0.0.1:9",
        composer_url="http://127.0.0.1:9",
        jobs_dir=str(tmp_path / "jobs"),
    )
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    assert document["servers"] == [{"url": "/", "description": "This gateway."}]
    assert "fraction" in document["components"]["schemas"]["JobProgress"]["required"]
    for path in ("/generate", "/compose"):
        headers = document["paths"][path]["post"]["responses"]["200"]["headers"]
        assert {"X-WeaveWave-Brief", "X-Seed", "X-Request-ID", "X-Sections"} <= set(headers)
    # mux answers a video, and says what of its soundtrack it kept
    generated = document["paths"]["/generate"]["post"]["responses"]["200"]
    assert "video/mp4" in generated["content"] and "audio/wav" in generated["content"]
    assert "X-WeaveWave-Original-Audio" in generated["headers"]
    job_audio = document["paths"]["/jobs/{job_id}/audio"]["get"]["responses"]["200"]
    assert "video/mp4" in job_audio["content"]
    created = document["paths"]["/jobs"]["post"]["responses"]["202"]
    assert "Location" in created["headers"] and "application/json" in created["content"]
