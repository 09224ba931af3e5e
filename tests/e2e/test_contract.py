"""Contract fuzzing: schemathesis generates requests from each service's own OpenAPI document
and sends them to the running stack (loopback only). No 5xx, no status the document does not
declare, every response body matching its schema. Bounded by examples and by time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
BUDGET_S = 60


def fuzz(base_url: str, report_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "12",
        "--max-time",
        str(BUDGET_S),
        "--seed",
        "20261126",
        "--request-timeout",
        "120",
        "--no-shrink",
        "--report-dir",
        str(report_dir),
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=BUDGET_S * 5)


@pytest.mark.parametrize("service", ["gateway", "captioner", "composer"])
def test_the_service_keeps_its_contract_under_fuzzing(
    stack: Stack, service: str, tmp_path: Path
) -> None:
    result = fuzz(stack.service(service).url, tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    for name in ("gateway", "captioner", "composer"):
        assert stack.service(name).process.poll() is None, f"{name} died under fuzzing"
