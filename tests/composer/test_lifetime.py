"""A request's place in the engine lives as long as the request, not as its body's first byte.

The composer app runs in process here, driven at the ASGI level by a client that is gone before
the first byte (`tests/asgi.py`): over a socket that moment is a race.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from composer.app import create_app
from composer.config import ComposerSettings
from tests.asgi import post_and_leave, refused
from tests.metrics import sample, still_for

pytestmark = [pytest.mark.engine, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def composer_app(tiny_musicgen: Path) -> Iterator[TestClient]:
    settings = ComposerSettings(
        backend="transformers", model=str(tiny_musicgen), max_duration_s=60, max_batch_size=4
    )
    with TestClient(create_app(settings)) as client:
        yield client


def reading(client: TestClient, name: str) -> float:
    return sample(client.get("/metrics").text, name)


def test_a_client_gone_before_the_first_byte_frees_its_slot(composer_app: TestClient) -> None:
    form = {"description": "endless drone", "duration": "60"}
    sent = post_and_leave(composer_app, "/v1/compose", form)
    assert refused(sent) is None  # accepted, not refused: the generation was queued
    steps = partial(reading, composer_app, "composer_generation_steps_total")
    assert still_for(steps), "the model kept generating for a client that had left"
    assert reading(composer_app, "composer_engine_slots_busy") == 0
