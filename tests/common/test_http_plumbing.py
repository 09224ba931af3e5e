"""The shared HTTP pieces on a small real app: error envelope, request ids, body cap, health."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Form
from fastapi.testclient import TestClient

from weavewave_common.errors import InvalidInput, ServiceUnavailable, install_error_handlers
from weavewave_common.health import health_router
from weavewave_common.limits import BodySizeLimitMiddleware
from weavewave_common.metrics import install_metrics
from weavewave_common.request_id import RequestIdMiddleware, current_request_id

READY: dict[str, str | None] = {"reason": "warming up"}


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    async def readiness() -> str | None:
        return READY["reason"]

    app.include_router(health_router(readiness))

    @app.post("/echo")
    async def echo(text: str = Form(max_length=10)) -> dict[str, str | None]:
        return {"text": text, "request_id": current_request_id()}

    @app.get("/invalid")
    async def invalid() -> None:
        raise InvalidInput("bad knob", code="bad_knob")

    @app.get("/busy")
    async def busy() -> None:
        raise ServiceUnavailable("busy", retry_after_s=7)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals")

    install_metrics(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=1000)
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_request_id_is_kept_from_the_client_and_echoed(client: TestClient) -> None:
    response = client.post("/echo", data={"text": "hi"}, headers={"X-Request-ID": "abc-123"})
    assert response.json() == {"text": "hi", "request_id": "abc-123"}
    assert response.headers["x-request-id"] == "abc-123"


def test_request_id_is_made_when_missing_or_unsafe(client: TestClient) -> None:
    made = client.post("/echo", data={"text": "hi"}).headers["x-request-id"]
    replaced = client.post("/echo", data={"text": "hi"}, headers={"X-Request-ID": "a b\tc"})
    assert len(made) == 32
    assert replaced.headers["x-request-id"] != "a b\tc"


def test_errors_share_one_envelope(client: TestClient) -> None:
    invalid = client.get("/invalid")
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "bad_knob"
    assert invalid.json()["error"]["request_id"] == invalid.headers["x-request-id"]
    validation = client.post("/echo", data={"text": "x" * 11})
    assert validation.status_code == 422
    assert validation.json()["error"]["code"] == "invalid_input"
    assert "text" in validation.json()["error"]["message"]
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_a_refusal_is_logged_with_its_code(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a 4xx left only the access line (its status), not which refusal it was."""
    with caplog.at_level(logging.INFO, logger="weavewave_common.errors"):
        client.get("/invalid")
    (line,) = [r for r in caplog.records if r.name == "weavewave_common.errors"]
    assert line.code == "bad_knob" and line.getMessage() == "422 bad_knob"  # type: ignore[attr-defined]


def test_unavailable_carries_retry_after(client: TestClient) -> None:
    response = client.get("/busy")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


def test_crash_is_a_500_envelope_without_internals(client: TestClient) -> None:
    response = client.get("/crash")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text


def test_body_over_the_cap_is_413(client: TestClient) -> None:
    response = client.post("/echo", files={"text": ("t.txt", b"x" * 5000)})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_readiness_reports_the_reason(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    READY["reason"] = "warming up"
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["detail"] == "warming up"
    READY["reason"] = None
    assert client.get("/readyz").status_code == 200


def test_metrics_count_requests(client: TestClient) -> None:
    client.post("/echo", data={"text": "hi"})
    body = client.get("/metrics").text
    assert 'http_requests_total{handler="/echo"' in body


def test_made_up_methods_never_reach_the_metrics(client: TestClient) -> None:
    """Before: each made-up method was a label value of its own (400 requests grew the page
    by 300 KB)."""
    for n in range(30):
        refused = client.request(f"BREW{n}", "/nowhere")
        assert refused.status_code == 405
        assert refused.json()["error"]["code"] == "method_not_allowed"
    assert "BREW" not in client.get("/metrics").text
    assert client.post("/echo", data={"text": "hi"}).status_code == 200


def test_a_degradable_service_says_degraded_when_asked_and_never_while_draining() -> None:
    """Before, a gateway with one tier down was not ready at all, so an orchestrator took the
    studio and the jobs API away while that tier restarted."""
    draining = {"now": False}

    async def one_tier_down() -> str | None:
        return "composer: connection refused"

    app = FastAPI()
    app.include_router(health_router(one_tier_down, lambda: draining["now"], degradable=True))
    strict = FastAPI()
    strict.include_router(health_router(one_tier_down))
    with TestClient(app) as client, TestClient(strict) as plain:
        assert client.get("/readyz").status_code == 503  # scripts still wait for all of it
        degraded = client.get("/readyz", params={"degraded": "ok"})
        assert degraded.status_code == 200
        assert degraded.json() == {"status": "degraded", "detail": "composer: connection refused"}
        assert plain.get("/readyz", params={"degraded": "ok"}).status_code == 503
        draining["now"] = True
        stopping = client.get("/readyz", params={"degraded": "ok"})
        assert stopping.status_code == 503 and stopping.json()["detail"] == "shutting down"
