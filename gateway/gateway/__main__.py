"""`python -m gateway`: read settings, serve."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from gateway.app import create_app
from gateway.config import GatewaySettings
from weavewave_common.errors import describe_validation
from weavewave_common.service import serve


def main() -> None:
    try:
        settings = GatewaySettings()
    except ValidationError as exc:  # a setting's own words, not a traceback
        sys.exit(f"gateway: {describe_validation(exc.errors())}")
    app = create_app(settings)
    serve("gateway", app, settings)


if __name__ == "__main__":
    main()
