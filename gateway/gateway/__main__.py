"""`python -m gateway`: read settings, serve."""

from __future__ import annotations

from gateway.app import create_app
from gateway.config import GatewaySettings
from weavewave_common.service import serve


def main() -> None:
    settings = GatewaySettings()
    app = create_app(settings)
    serve("gateway", app, settings)


if __name__ == "__main__":
    main()
