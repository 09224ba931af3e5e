"""`python -m composer`: read settings, serve."""

from __future__ import annotations

from composer.app import create_app
from composer.config import ComposerSettings
from weavewave_common.service import serve


def main() -> None:
    settings = ComposerSettings()
    app = create_app(settings)
    serve("composer", app, settings)


if __name__ == "__main__":
    main()
