"""Write `docs/configuration.md` from the three services' settings classes; `--check` fails
(exit 1) when the file on disk differs, so the reference cannot drift from the code.

Run from the repository root with the services on the path (`make docs`, `make docs-check`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

SERVICES = (
    (
        "The gateway",
        "gateway.config",
        "GatewaySettings",
        "GATEWAY_",
        "the public API ([api.md](api.md))",
    ),
    (
        "The captioner",
        "captioner.config",
        "CaptionerSettings",
        "CAPTIONER_",
        "the brief writer ([captioner.md](captioner.md))",
    ),
    (
        "The composer",
        "composer.config",
        "ComposerSettings",
        "COMPOSER_",
        "one music model per process ([composers.md](composers.md))",
    ),
)

HEADER = """# Configuration

Every setting is an environment variable (or a line of a `.env` file in the working folder),
one prefix per service. This page is generated from the settings classes by
`scripts/config_doc.py` (`make docs`); `make test` fails when it is out of date.
"""


def default_of(field: Any) -> str:
    """The default as the row shows it (a factory's value for lists)."""
    return str(field.default_factory() if field.default_factory else field.default)


def table(settings: Any, prefix: str) -> list[str]:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in settings.model_fields.items():
        meaning = str(field.description).replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | `{default_of(field)}` | {meaning} |")
    return rows


def render() -> str:
    lines = [HEADER]
    for title, module, class_name, prefix, what in SERVICES:
        settings = getattr(importlib.import_module(module), class_name)
        lines += [f"## {title} (`{prefix}*`)", "", f"Settings of {what}.", ""]
        lines += [*table(settings, prefix), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the file differs")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            sys.stderr.write(f"{DOC} is out of date: run `make docs`.\n")
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
