"""`python -m composer`: read settings, configure logs, serve with uvicorn."""

from __future__ import annotations

import uvicorn

from composer.app import create_app
from composer.config import ComposerSettings
from weavewave_common.logging import configure_logging


def main() -> None:
    settings = ComposerSettings()
    configure_logging("composer", settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
