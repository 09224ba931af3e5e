"""Structured logs (`weavewave_common/logging.py`): JSON lines with ISO times, access lines as
fields, probes kept out of the info log."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from weavewave_common.logging import configure_logging


def access(path: str, status: int = 200) -> None:
    """One access line as uvicorn writes it."""
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", status
    )


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_probe_lines_stay_out_of_the_info_log_and_access_lines_have_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: 61-75 % of the gateway's lines were probes, the method, path and status sat
    inside the message, and the time was not ISO 8601."""
    configure_logging("gateway", "INFO", json_logs=True)
    for probe in ("/healthz", "/readyz", "/metrics"):
        access(probe)
    access("/jobs/abc", 404)
    logged = lines(capsys.readouterr().err)
    assert [line["path"] for line in logged] == ["/jobs/abc"]
    line = logged[0]
    assert (line["method"], line["status"], line["service"]) == ("GET", 404, "gateway")
    assert datetime.fromisoformat(str(line["time"])).utcoffset() is not None
    configure_logging("gateway", "DEBUG", json_logs=True)
    access("/readyz")
    assert [line["path"] for line in lines(capsys.readouterr().err)] == ["/readyz"]
    configure_logging("gateway", "INFO", json_logs=True)
