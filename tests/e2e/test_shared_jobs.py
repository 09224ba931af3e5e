"""Two gateway replicas sharing their jobs through a real PostgreSQL server and one jobs
folder, in front of the stack's real captioner and composer: every job runs exactly once, both
list the same jobs, a cancel sent to either stops the job wherever it runs, and killing the
replica that runs a job hands the job to the other."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import jobs_gateway, seconds_of, submit, wait_for
from tests.metrics import metric, still_for, total
from tests.postgres import PostgresServer
from tooling.supervise import RunningService

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

LEASE_S = 2


@contextmanager
def replicas(
    stack: Stack, postgres: PostgresServer, jobs_dir: Path
) -> Iterator[tuple[RunningService, RunningService]]:
    env = {
        "GATEWAY_JOBS_DATABASE_URL": postgres.create_database(f"jobs_{uuid.uuid4().hex[:8]}"),
        "GATEWAY_JOB_LEASE_S": str(LEASE_S),
        "GATEWAY_JOB_POLL_S": "0.2",
    }
    with (
        jobs_gateway(stack, jobs_dir, None, **env) as one,
        jobs_gateway(stack, jobs_dir, None, **env) as two,
    ):
        yield one, two


@pytest.fixture(scope="module")
def pair(
    stack: Stack, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningService, RunningService]]:
    with replicas(stack, postgres, tmp_path_factory.mktemp("shared-jobs")) as both:
        yield both


def runner_of(job_id: str, candidates: tuple[RunningService, ...]) -> RunningService:
    """The replica that claimed the job (from its log)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for replica in candidates:
            if f"job {job_id} claimed" in replica.log():
                return replica
        time.sleep(0.1)
    raise AssertionError(f"no replica claimed job {job_id}")


def composed(stack: Stack) -> float:
    return total(httpx.get(f"{stack.composer.url}/metrics").text, "composer_requests_total")


def test_every_job_runs_once_and_both_list_the_same(
    stack: Stack, pair: tuple[RunningService, RunningService]
) -> None:
    before = composed(stack)
    jobs = [
        submit(pair[n % 2].url, {"description": f"a tune numbered {n}", "duration": "1"})
        for n in range(8)
    ]
    for job in jobs:  # finished, as either replica tells it
        assert wait_for(pair[1].url, job["id"], {"done", "failed"})["state"] == "done"
        assert httpx.get(f"{pair[0].url}/jobs/{job['id']}").json()["state"] == "done"
    logs = pair[0].log() + pair[1].log()
    for job in jobs:
        assert logs.count(f"job {job['id']} claimed") == 1, job["id"]
    assert composed(stack) - before == len(jobs)  # the composer saw each job once
    listed = [
        [j["id"] for j in httpx.get(f"{replica.url}/jobs", params={"limit": 100}).json()["jobs"]]
        for replica in pair
    ]
    assert listed[0] == listed[1]
    assert listed[0][: len(jobs)] == [j["id"] for j in reversed(jobs)]  # newest first
    page = httpx.get(f"{pair[1].url}/jobs", params={"limit": 3}).json()
    after = httpx.get(f"{pair[0].url}/jobs", params={"limit": 3, "after": page["next"]}).json()
    assert [j["id"] for j in page["jobs"] + after["jobs"]] == listed[0][:6]


def test_a_cancel_sent_to_either_replica_stops_the_job(
    stack: Stack, pair: tuple[RunningService, RunningService]
) -> None:
    job = submit(pair[0].url, {"description": "an endless drone", "duration": "30"})
    running = runner_of(job["id"], pair)
    other = pair[1] if running is pair[0] else pair[0]
    wait_for(other.url, job["id"], {"composing"})
    cancelled = httpx.delete(f"{other.url}/jobs/{job['id']}", timeout=30).json()
    assert cancelled["state"] == "cancelled"
    assert still_for(partial(metric, stack.composer.url, "composer_generation_steps_total"))
    assert httpx.get(f"{running.url}/jobs/{job['id']}").json()["state"] == "cancelled"


def test_killing_the_replica_running_a_job_hands_it_to_the_other(
    stack: Stack, postgres: PostgresServer, tmp_path: Path
) -> None:
    with replicas(stack, postgres, tmp_path) as both:
        job = submit(both[0].url, {"description": "a drone", "duration": "15", "seed": "5"})
        running = runner_of(job["id"], both)
        survivor = both[1] if running is both[0] else both[0]
        wait_for(survivor.url, job["id"], {"composing"})
        running.process.send_signal(signal.SIGKILL)  # a crash: its lease is never given back
        running.process.wait(timeout=30)
        done = wait_for(survivor.url, job["id"], {"done", "failed"}, timeout_s=120)
        assert done["state"] == "done", done
        assert f"job {job['id']} claimed" in survivor.log()
        audio = httpx.get(f"{survivor.url}/jobs/{job['id']}/audio", timeout=30)
        assert seconds_of(audio.content) == pytest.approx(15.0, abs=0.02)
