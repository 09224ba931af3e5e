"""The Helm chart, rendered offline: helm from `scripts/k8s-tools.sh`, objects as dicts."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "weavewave"
TOOLS = REPO / ".cache" / "k8s-tools"
PROFILES = ("default", "hpa", "keda", "none", "songs")
"""`default` is the chart's own values; the others are `ci/<name>-values.yaml` on top."""
MODEL_TIERS = ("captioner", "composer")
MORE_COMPOSERS = {"songs": ("composer-ace-step", "composer-stable-audio")}
"""The composer tiers a profile adds (`moreComposers`)."""


def model_tiers(profile: str) -> tuple[str, ...]:
    return (*MODEL_TIERS, *MORE_COMPOSERS.get(profile, ()))


def prefix_of(tier: str) -> str:
    """The settings prefix of a tier's service: every composer tier runs the composer."""
    return tier.split("-")[0].upper() + "_"


@functools.cache
def helm() -> Path:
    binary = TOOLS / "helm" / "helm"
    if not binary.exists():  # `make test` fetches it first; pytest alone fetches it here
        subprocess.run([str(REPO / "scripts" / "k8s-tools.sh")], check=True, capture_output=True)
    return binary


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`helm` or `kubectl` from the checkout's tools, pointed at no cluster, their caches kept
    inside the checkout."""
    helm()  # fetches kubectl with it
    env = {"KUBECONFIG": "/nonexistent", "HELM_CACHE_HOME": str(REPO / ".cache" / "helm"),
           "HELM_CONFIG_HOME": str(REPO / ".cache" / "helm"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(
        [str(TOOLS / tool / tool), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tool("helm", *args)


def profile_args(profile: str) -> list[str]:
    return [] if profile == "default" else ["-f", str(CHART / "ci" / f"{profile}-values.yaml")]


@functools.cache
def render(profile: str, *sets: str) -> tuple[dict[str, Any], ...]:
    args = [f"--set={s}" for s in sets]
    result = run_helm(
        "template", "ww", str(CHART), "--namespace", "music", *profile_args(profile), *args
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def tier_of(obj: dict[str, Any]) -> str:
    component: str = obj["metadata"]["labels"]["app.kubernetes.io/component"]
    return component


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from secret>") for e in container.get("env", [])}
