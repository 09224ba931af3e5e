"""One set of default models per kind of host, the same wherever that host is reached from:
the images (so `docker compose`) and the Helm chart on GPUs; `make demo`/`make up` on CPUs,
where the 7B captioner would take minutes a brief. Before, compose served musicgen-medium, the
chart musicgen-stereo-medium and the README named neither."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from tests.deploy.chart import env_of, of_kind, pod_spec, render, tier_of

REPO = Path(__file__).resolve().parents[2]


def image_env(service: str) -> dict[str, str]:
    """The `ENV` settings a service's Dockerfile bakes into its image."""
    text = (REPO / "services" / service / "Dockerfile").read_text().replace("\\\n", " ")
    pairs = [p for line in text.splitlines() if line.startswith("ENV ") for p in line.split()[1:]]
    return dict(pair.split("=", 1) for pair in pairs)


def cpu_defaults() -> dict[str, str]:
    """`make demo`'s models (scripts/stack.py's DEFAULTS), read as the launcher reads them."""
    spec = importlib.util.spec_from_file_location("stack", REPO / "scripts" / "stack.py")
    assert spec is not None and spec.loader is not None
    stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack)
    return dict(stack.DEFAULTS)


def test_the_images_and_the_chart_serve_the_same_models() -> None:
    gpu = {
        "captioner": image_env("captioner")["CAPTIONER_MODEL"],
        "composer": image_env("composer")["COMPOSER_MODEL"],
    }
    deployments = {tier_of(d): d for d in of_kind(render("default"), "Deployment")}
    for tier, model in gpu.items():
        (container,) = pod_spec(deployments[tier])["containers"]
        charted = env_of(container)[f"{tier.upper()}_MODEL"]
        assert Path(charted).name == model.split("/")[-1], (tier, charted, model)  # on /models
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for tier in gpu:  # compose runs the images' defaults
        assert f"{tier.upper()}_MODEL" not in services[tier].get("environment", {})


def test_the_readme_names_both_sets() -> None:
    readme = (REPO / "README.md").read_text()
    named = [
        image_env("captioner")["CAPTIONER_MODEL"],
        image_env("composer")["COMPOSER_MODEL"],
        cpu_defaults()["captioner"],
        cpu_defaults()["composer"],
    ]
    assert [m for m in named if f"`{m}`" not in readme] == []
