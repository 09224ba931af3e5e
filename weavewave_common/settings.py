"""What every service's settings share: where it listens, how it logs, how long it drains.

Each service subclasses `ServiceSettings` with its own env prefix (`CAPTIONER_`, `COMPOSER_`,
`GATEWAY_`) and its own default port; `serve` reads these fields whoever the service is.
Forwarded headers are believed only from the proxies an operator names: uvicorn's own default
believes any local process, which would let one choose its client address (and so its rate-limit
bucket) with a header.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """The serving settings of one service process."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, description="Port to listen on.")
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(True, description="JSON log lines (false: plain text for people).")
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM, how long requests under way may finish (0: none)."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A connection whose request headers are not complete this long after it "
        "opened (or after its last response) is closed.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies whose X-Forwarded-For and -Proto are believed: IPs or networks, "
        "comma-separated, or * (empty: none; the peer's own address is the client's).",
    )
