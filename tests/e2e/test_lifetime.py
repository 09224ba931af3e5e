"""The gateway lets go of everything a request holds when the request ends, also when its
response never got to its first byte: the capacity slot, the form's files and the composer's
stream (so the composer stops). The gateway runs in process over the real upstreams, driven at
the ASGI level by a client that leaves at once (`tests/asgi.py`)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.config import GatewaySettings
from tests.asgi import post_and_leave, refused
from tests.e2e.conftest import Stack
from tests.metrics import metric, sample, still_for

pytestmark = pytest.mark.timeout(120)


def test_a_client_gone_before_the_first_byte_holds_nothing(stack: Stack, tmp_path: Path) -> None:
    settings = GatewaySettings(
        captioner_url=stack.captioner.url,
        composer_url=stack.composer.url,
        jobs_dir=str(tmp_path / "jobs"),
        max_duration_s=30,
    )
    with TestClient(create_app(settings)) as gateway:
        form = {"description": "endless drone", "duration": "30"}
        sent = post_and_leave(gateway, "/compose", form, patience=1)
        assert refused(sent) is None  # accepted: the composer was streaming for it
        steps = partial(metric, stack.composer.url, "composer_generation_steps_total")
        assert still_for(steps), "the composer kept generating for a client that had left"
        assert sample(gateway.get("/metrics").text, "gateway_requests_in_flight") == 0
