"""API keys, revocation, rate limits and CORS on the real gateway app.

All of these are decided before the body is read and before any upstream is called, so the
app runs here without upstreams (nothing listens at their addresses).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway import metrics
from gateway.access import AccessControl
from gateway.app import create_app
from gateway.config import GatewaySettings
from weavewave_common.errors import TooManyRequests

NOWHERE = {"captioner_url": "http://127.0.0.1:9", "composer_url": "http://127.0.0.1:9"}


def client_for(**settings: object) -> TestClient:
    return TestClient(create_app(GatewaySettings(**{**NOWHERE, **settings})))  # type: ignore[arg-type]


@pytest.fixture
def guarded() -> Iterator[TestClient]:
    with client_for(
        api_keys="key-one,key-two", revoked_api_keys="old-key", rate_limit_per_minute=3
    ) as client:
        yield client


def test_keys_are_required_when_configured(guarded: TestClient) -> None:
    assert guarded.post("/generate").status_code == 401
    assert guarded.post("/generate", headers={"X-API-Key": "wrong"}).status_code == 401
    revoked = guarded.post("/generate", headers={"Authorization": "Bearer old-key"})
    assert revoked.status_code == 403
    assert revoked.json()["error"]["code"] == "forbidden"
    # a valid key passes the check: the empty form is then the problem (422), not the key
    ok = guarded.post("/generate", headers={"Authorization": "Bearer key-two"})
    assert ok.status_code == 422
    assert ok.json()["error"]["code"] == "empty_request"


def test_health_and_metrics_stay_open(guarded: TestClient) -> None:
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/metrics").status_code == 200


def test_each_key_has_its_own_rate_limit(guarded: TestClient) -> None:
    one = {"X-API-Key": "key-one"}
    assert [guarded.post("/describe", headers=one).status_code for _ in range(3)] == [422] * 3
    limited = guarded.post("/describe", headers=one)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert guarded.post("/describe", headers={"X-API-Key": "key-two"}).status_code == 422


def test_open_by_default_but_still_rate_limited_per_client() -> None:
    with client_for(rate_limit_per_minute=1) as client:
        assert client.post("/compose").status_code == 422
        assert client.post("/compose").status_code == 429


def test_following_a_job_never_spends_the_budget_to_compose_with() -> None:
    """Before: one bucket for everything, so the studio's polling of its own job (2.5 GETs a
    second) spent the 60 a minute and the job's page failed on 429 mid-job."""
    with client_for(rate_limit_per_minute=2, read_rate_limit_per_minute=50) as client:
        polls = [client.get("/jobs/some-job").status_code for _ in range(40)]
        assert set(polls) == {404}  # read budget: 40 of 50
        limited = metrics.RATE_LIMITED.labels("work")._value.get()
        assert [client.post("/compose").status_code for _ in range(3)] == [422, 422, 429]
        assert metrics.RATE_LIMITED.labels("work")._value.get() == limited + 1  # counted
        assert client.get("/jobs/some-job").status_code == 404  # reads still have their own
        for _ in range(20):
            last = client.get("/jobs/some-job")
        assert last.status_code == 429  # and are bounded too


def test_cors_is_closed_unless_configured() -> None:
    preflight = {"Origin": "https://studio.example", "Access-Control-Request-Method": "POST"}
    with client_for() as closed:
        response = closed.options("/generate", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    with client_for(cors_origins="https://studio.example") as open_to_one:
        response = open_to_one.options("/generate", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://studio.example"


def test_settings_read_comma_separated_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_API_KEYS", "a, b ,c")
    assert GatewaySettings().api_keys == ["a", "b", "c"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_buckets_are_pruned_and_bounded() -> None:
    clock = Clock()
    limits = AccessControl([], [], per_minute=2, max_buckets=500, clock=clock)
    for number in range(2000):  # a crowd of addresses, one request each
        limits.take(f"10.0.{number // 256}.{number % 256}")
    assert limits.tracked == 500  # bounded: the least recently used went first
    limits.take("busy")
    limits.take("busy")
    with pytest.raises(TooManyRequests):
        limits.take("busy")  # a live bucket keeps limiting
    clock.now += 30
    limits.take("other")
    with pytest.raises(TooManyRequests):  # half a minute: one token back, but kept, not reset
        limits.take("busy")
        limits.take("busy")
    clock.now += 61
    limits.take("late")
    assert limits.tracked == 1  # refilled buckets are the same as none: dropped
