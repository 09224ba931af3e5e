"""The docs stay true: the configuration reference matches the settings classes (it is generated
from them by `make docs`; `make docs-check`, run by `make lint`, fails when it drifts), the README
stays a landing page, and every link between the pages resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGURATION = REPO / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(?P<name>[A-Z_]+)` \| `(?P<default>[^`]*)` \| (?P<meaning>.+) \|$")
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def table_rows(prefix: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in CONFIGURATION.read_text().splitlines():
        match = ROW.match(line)
        if match and match["name"].startswith(prefix):
            rows[match["name"]] = (match["default"], match["meaning"].replace("\\|", "|"))
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


def test_the_readme_is_a_landing_page() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for page in ("architecture", "api", "jobs", "composers", "captioner", "deploy"):
        assert f"docs/{page}.md" in readme
    assert "reliability.md" in readme and "configuration.md" in readme


def test_every_link_between_the_pages_resolves() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for match in LINK.finditer(page.read_text()):
            target = match["target"]
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken
