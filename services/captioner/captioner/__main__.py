"""`python -m captioner`: read settings, configure logs, serve with uvicorn."""

from __future__ import annotations

import uvicorn

from captioner.app import create_app
from captioner.config import CaptionerSettings
from weavewave_common.logging import configure_logging


def main() -> None:
    settings = CaptionerSettings()
    configure_logging("captioner", settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":  # vLLM spawns processes: the guard keeps them from re-running this
    main()
