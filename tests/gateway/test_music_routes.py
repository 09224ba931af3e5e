"""The music routes' refusals that need no upstream: a gateway in process whose captioner and
composer cannot be reached, so anything that got as far as an upstream would be a 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import GatewaySettings


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[TestClient]:
    settings = GatewaySettings(
        captioner_url="http://127.0.0.1:9",
        composer_url="http://127.0.0.1:9",
        describe_retries=0,
        rate_limit_per_minute=1000,
        jobs_dir=str(tmp_path / "jobs"),
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("duration", ["-5", "abc", "0", "4000"])
def test_describe_checks_its_duration_as_generate_does(gateway: TestClient, duration: str) -> None:
    """Before: /describe passed any duration on (or dropped it), so `-5` and `abc` were
    described (here: the captioner was asked, 503)."""
    refused = gateway.post("/describe", data={"prompt": "rain", "duration": duration})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid_input"
    assert "duration" in refused.json()["error"]["message"]


def test_a_good_describe_duration_reaches_the_captioner(gateway: TestClient) -> None:
    asked = gateway.post("/describe", data={"prompt": "rain", "duration": "30"})
    assert asked.status_code == 503  # it passed every check; the captioner is not there
    assert asked.json()["error"]["code"] == "captioner_unavailable"
