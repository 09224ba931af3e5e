"""The README stays true: its settings table matches the settings classes exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| `(?P<name>[A-Z_]+)` \| `(?P<default>[^`]*)` \| (?P<meaning>.+) \|$")


def table_rows(prefix: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in README.read_text().splitlines():
        match = ROW.match(line)
        if match and match["name"].startswith(prefix):
            rows[match["name"]] = (match["default"], match["meaning"])
    return rows


def settings_rows(settings_class: type, prefix: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for name, field in settings_class.model_fields.items():  # type: ignore[attr-defined]
        default = field.default_factory() if field.default_factory else field.default
        rows[f"{prefix}{name.upper()}"] = (str(default), str(field.description))
    return rows


def test_captioner_settings_table_matches_the_code() -> None:
    captioner_config = pytest.importorskip("captioner.config")
    expected = settings_rows(captioner_config.CaptionerSettings, "CAPTIONER_")
    assert table_rows("CAPTIONER_") == expected


def test_composer_settings_table_matches_the_code() -> None:
    composer_config = pytest.importorskip("composer.config")
    expected = settings_rows(composer_config.ComposerSettings, "COMPOSER_")
    assert table_rows("COMPOSER_") == expected


def test_gateway_settings_table_matches_the_code() -> None:
    gateway_config = pytest.importorskip("gateway.config")
    expected = settings_rows(gateway_config.GatewaySettings, "GATEWAY_")
    assert table_rows("GATEWAY_") == expected
