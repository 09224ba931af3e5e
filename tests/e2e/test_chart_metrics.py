"""The gauges the chart's autoscalers read are the ones the running services export: the
metric names come from the rendered chart, the /metrics pages from the stack's real services."""

from __future__ import annotations

import httpx
import pytest

from tests.deploy.chart import of_kind, render, tier_of
from tests.e2e.conftest import Stack


@pytest.mark.parametrize("profile", ["hpa", "keda"])
def test_every_autoscaling_metric_is_a_gauge_its_tier_exports(stack: Stack, profile: str) -> None:
    objects = render(profile)
    scalers = of_kind(objects, "HorizontalPodAutoscaler") + of_kind(objects, "ScaledObject")
    assert {tier_of(s) for s in scalers} == {"gateway", "captioner", "composer"}
    for scaler in scalers:
        tier = tier_of(scaler)
        if scaler["kind"] == "HorizontalPodAutoscaler":
            (metric,) = scaler["spec"]["metrics"]
            name = metric["pods"]["metric"]["name"]
        else:
            query = scaler["spec"]["triggers"][0]["metadata"]["query"]
            name = query.removeprefix("sum(").split("{", 1)[0]
        page = httpx.get(f"{stack.service(tier).url}/metrics", timeout=10).text
        assert f"# TYPE {name} gauge" in page, (tier, name)
        assert f"\n{name} " in page  # exported even before any request (the scaler's zero)
