"""Structured logs: one JSON object a line (or plain text), request id on every record.

JSON lines carry an ISO 8601 UTC `time`; uvicorn's access lines carry `method`, `path`,
`status` and `client` as fields of their own; health probes and metric scrapes (most of a
serving process's lines otherwise) are logged at debug only.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from weavewave_common.request_id import current_request_id

PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths polled by orchestrators and scrapers: their access lines only at debug."""


class AccessLogFilter(logging.Filter):
    """uvicorn's access lines with their parts as fields; probe lines kept for debug only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            return True
        client, method, path, _, status = args
        record.client, record.method, record.path, record.status = client, method, path, status
        if str(path).split("?", 1)[0] in PROBES:
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


class RequestIdFilter(logging.Filter):
    """Stamp each record with the request id of the context that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    """Route the root logger (and uvicorn's) to stderr with the request id on every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if json_logs:
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(request_id)s %(message)s",
                rename_fields={"levelname": "level", "name": "logger"},
                static_fields={"service": service},
                timestamp="time",  # ISO 8601, UTC
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s {service} [%(request_id)s] %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.filters[:] = [f for f in access.filters if not isinstance(f, AccessLogFilter)]
    access.addFilter(AccessLogFilter())
