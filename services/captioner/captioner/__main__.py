"""`python -m captioner`: read settings, serve."""

from __future__ import annotations

from captioner.app import create_app
from captioner.config import CaptionerSettings
from captioner.orphans import children_die_with_this_process
from weavewave_common.service import serve


def main() -> None:
    children_die_with_this_process()  # vLLM's engine core never outlives the service
    settings = CaptionerSettings()
    app = create_app(settings)
    serve("captioner", app, settings)


if __name__ == "__main__":  # vLLM spawns processes: the guard keeps them from re-running this
    main()
