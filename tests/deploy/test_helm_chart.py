"""The Helm chart, checked offline: `helm lint --strict`, every values profile rendered and
validated against the Kubernetes schemas (strict; a kind without a schema is a failure, so
KEDA's ScaledObject gets checks of its own), and the rules no schema knows: whole GPUs in
limits, selectors that match pods, probes and drain time, only the gateway exposed, hardening
as in the compose file, and settings names the services really read."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from gateway.config import GatewaySettings
from tests.deploy.chart import (
    CHART,
    PROFILES,
    env_of,
    model_tiers,
    of_kind,
    pod_spec,
    prefix_of,
    profile_args,
    render,
    run_helm,
    tier_of,
)
from tests.test_docs import table_rows

KUBERNETES = ("1.30.0", "1.37.0")  # the chart's kubeVersion floor, and the newest schemas
SCHEMALESS = {"ScaledObject"}  # a CRD: checked below, never silently passed


@pytest.mark.parametrize("profile", PROFILES)
def test_helm_lint_strict(profile: str) -> None:
    result = run_helm("lint", "--strict", str(CHART), *profile_args(profile))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("version", KUBERNETES)
def test_rendered_objects_pass_the_kubernetes_schemas(profile: str, version: str) -> None:
    for obj in render(profile):
        if obj["kind"] in SCHEMALESS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as exc:  # never a silent pass
            pytest.fail(f"{obj['kind']} has no schema for {version}: {exc}")


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("captioner.gpus=0", "minimum"),
        ("composer.gpus=1.5", "integer"),
        ("autoscaling.mode=kedda", "hpa"),
        ("gateway.replicas=3", "secretName"),  # SQLite jobs belong to one gateway
        ("gateway.replica=2", "additional properties"),
        ("autoscaling.gateway.enabled=true", "PostgreSQL"),
    ],
)
def test_bad_values_are_refused(setting: str, complaint: str) -> None:
    result = run_helm("template", "ww", str(CHART), f"--set={setting}")
    assert result.returncode != 0
    assert complaint.lower() in result.stderr.lower(), result.stderr


def test_the_schema_check_catches_what_the_chart_would_break() -> None:
    """The validator is live: a typo the schemas know is refused."""
    deployment = dict(of_kind(render("hpa"), "Deployment")[0])
    deployment["spec"] = {**deployment["spec"], "replica": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES[-1], strict=True)


@pytest.mark.parametrize("profile", PROFILES)
def test_model_tiers_take_whole_gpus_and_the_gateway_none(profile: str) -> None:
    deployments = {tier_of(d): d for d in of_kind(render(profile), "Deployment")}
    assert set(deployments) == {"gateway", *model_tiers(profile)}
    for tier, deployment in deployments.items():
        spec = pod_spec(deployment)
        for container in spec["containers"]:
            resources = container["resources"]
            gpus = resources.get("limits", {}).get("nvidia.com/gpu")
            if tier == "gateway":
                assert gpus is None and "nvidia.com/gpu" not in resources.get("requests", {})
                continue
            assert isinstance(gpus, int) and gpus >= 1, (tier, gpus)
            assert resources["requests"]["nvidia.com/gpu"] == gpus  # extended: equal or absent
        if tier != "gateway":
            keys = {t.get("key") for t in spec.get("tolerations", [])}
            assert "nvidia.com/gpu" in keys


def test_gpu_count_and_placement_come_from_values() -> None:
    objects = render("none", "composer.gpus=2", "composer.nodeSelector.gpu=h200")
    composer = next(d for d in of_kind(objects, "Deployment") if tier_of(d) == "composer")
    spec = pod_spec(composer)
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert spec["nodeSelector"] == {"gpu": "h200"}


@pytest.mark.parametrize("profile", PROFILES)
def test_selectors_and_targets_match(profile: str) -> None:
    objects = render(profile)
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]

    def matches(selector: dict[str, str]) -> int:
        return sum(selector.items() <= labels.items() for labels in pod_labels)

    for deployment in deployments.values():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    for service in of_kind(objects, "Service"):
        assert matches(service["spec"]["selector"]) == 1, service["metadata"]["name"]
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in of_kind(objects, kind):
            key = "selector" if kind == "PodDisruptionBudget" else "podSelector"
            assert matches(obj["spec"][key]["matchLabels"]) == 1, obj["metadata"]["name"]
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for obj in of_kind(objects, kind):
            target = obj["spec"]["scaleTargetRef"]
            assert target["kind"] == "Deployment" and target["name"] in deployments
            assert "replicas" not in deployments[target["name"]]["spec"]  # the scaler owns it
    scaled = of_kind(objects, "HorizontalPodAutoscaler") + of_kind(objects, "ScaledObject")
    assert len(scaled) == {"default": 2, "hpa": 3, "keda": 3, "none": 0, "songs": 4}[profile]


@pytest.mark.parametrize("profile", PROFILES)
def test_probes_and_drain_time(profile: str) -> None:
    for deployment in of_kind(render(profile), "Deployment"):
        spec = pod_spec(deployment)
        (container,) = spec["containers"]
        # the gateway stays in its Service while one model tier restarts (degraded)
        ready = "/readyz?degraded=ok" if tier_of(deployment) == "gateway" else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == ready
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        drains = [float(v) for k, v in env_of(container).items() if k.endswith("_DRAIN_TIMEOUT_S")]
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert len(drains) == 1 and spec["terminationGracePeriodSeconds"] > drains[0] + pre_stop
        if tier_of(deployment) != "gateway":  # minutes of weight loading before liveness
            startup = container["startupProbe"]
            budget = startup["periodSeconds"] * startup["failureThreshold"]
            assert startup["httpGet"]["path"] == "/readyz" and budget >= 300


@pytest.mark.parametrize("profile", PROFILES)
def test_pods_are_hardened_and_caches_are_writable(profile: str) -> None:
    for deployment in of_kind(render(profile), "Deployment"):
        spec = pod_spec(deployment)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in spec["volumes"]}
        (container,) = spec["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "/tmp" in mounts
        if tier_of(deployment) == "gateway":
            continue
        assert mounts["/models"].get("readOnly") is True
        cache = volumes[mounts["/cache"]["name"]]
        assert "emptyDir" in cache and not mounts["/cache"].get("readOnly")  # exec-writable
        caches = {k: v for k, v in env_of(container).items() if k.endswith(("_CACHE_DIR", "_HOME"))}
        assert caches and all(v.startswith("/cache/") for v in caches.values()), caches


@pytest.mark.parametrize("profile", ["hpa", "keda", "songs"])
def test_only_the_gateway_is_reachable_from_outside(profile: str) -> None:
    objects = render(profile)
    services = {tier_of(s): s for s in of_kind(objects, "Service")}
    for tier in model_tiers(profile):
        assert services[tier]["spec"]["clusterIP"] == "None"  # headless: picked per request
    policies = {tier_of(p): p for p in of_kind(objects, "NetworkPolicy")}
    assert set(policies) == {"gateway", *model_tiers(profile)}
    gateway_labels = policies["gateway"]["spec"]["podSelector"]["matchLabels"]
    for tier in model_tiers(profile):
        rules = policies[tier]["spec"]["ingress"]
        assert policies[tier]["spec"]["policyTypes"] == ["Ingress"]
        peers = [peer for rule in rules for peer in rule["from"]]  # no rule open to all
        assert {"podSelector": {"matchLabels": gateway_labels}} in peers
        assert all("podSelector" in p or "namespaceSelector" in p for p in peers)
        assert all(p.get("podSelector", {"matchLabels": gateway_labels}) != {} for p in peers)


def test_the_jobs_database_comes_from_a_secret() -> None:
    (gateway,) = [d for d in of_kind(render("hpa"), "Deployment") if tier_of(d) == "gateway"]
    env = {e["name"]: e for e in pod_spec(gateway)["containers"][0]["env"]}
    ref = env["GATEWAY_JOBS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "weavewave-jobs-db", "key": "url"}
    default = [d for d in of_kind(render("default"), "Deployment") if tier_of(d) == "gateway"]
    assert "GATEWAY_JOBS_DATABASE_URL" not in env_of(pod_spec(default[0])["containers"][0])


def test_the_jobs_volume_is_read_write_once_for_one_gateway_and_shared_for_several() -> None:
    """Before: a ReadWriteMany claim even for one gateway, which most clusters cannot bind."""

    def modes(*sets: str) -> list[str]:
        (claim,) = of_kind(render("default", *sets), "PersistentVolumeClaim")
        return list(claim["spec"]["accessModes"])

    assert modes() == ["ReadWriteOnce"]
    shared = ("gateway.replicas=2", "jobs.database.secretName=db")
    assert modes(*shared) == ["ReadWriteMany"]
    assert modes(*shared, "jobs.volume.accessModes={ReadWriteOncePod}") == ["ReadWriteOncePod"]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_setting_the_chart_passes_is_one_the_service_reads(profile: str) -> None:
    gateway_settings = {f"GATEWAY_{name.upper()}" for name in GatewaySettings.model_fields}
    known = {
        "GATEWAY_": gateway_settings,
        "CAPTIONER_": set(table_rows("CAPTIONER_")),  # docs/configuration.md matches the code
        "COMPOSER_": set(table_rows("COMPOSER_")),
    }
    for deployment in of_kind(render(profile), "Deployment"):
        prefix = prefix_of(tier_of(deployment))
        names = [n for n in env_of(pod_spec(deployment)["containers"][0]) if n.startswith(prefix)]
        assert names  # its own settings, each one the service reads
        assert set(names) <= known[prefix], set(names) - known[prefix]


def test_gateway_upstreams_are_the_headless_services() -> None:
    objects = render("hpa")
    services = {tier_of(s): s for s in of_kind(objects, "Service")}
    (gateway,) = [d for d in of_kind(objects, "Deployment") if tier_of(d) == "gateway"]
    env = env_of(pod_spec(gateway)["containers"][0])
    assert env["GATEWAY_RESOLVE_REPLICAS"] == "true"
    for tier in model_tiers("hpa"):
        service = services[tier]
        port = service["spec"]["ports"][0]["port"]
        expected = f"http://{service['metadata']['name']}:{port}"
        assert env[f"GATEWAY_{tier.upper()}_URLS"] == expected


def test_more_composers_are_each_a_tier_the_gateway_knows_by_name() -> None:
    objects = render("songs", "composer.env.COMPOSER_LOG_LEVEL=DEBUG")
    services = {tier_of(s): s for s in of_kind(objects, "Service")}
    deployments = {tier_of(d): d for d in of_kind(objects, "Deployment")}
    gateway = env_of(pod_spec(deployments["gateway"])["containers"][0])

    def url(tier: str) -> str:
        return f"http://{services[tier]['metadata']['name']}:8002"

    named = ["musicgen", "ace-step", "stable-audio"]  # the default first
    tiers = ["composer", "composer-ace-step", "composer-stable-audio"]
    expected = ",".join(f"{name}={url(tier)}" for name, tier in zip(named, tiers, strict=True))
    assert gateway["GATEWAY_COMPOSERS"] == expected
    assert "GATEWAY_COMPOSER_URLS" not in gateway  # every composer is named instead
    (ace_step,) = pod_spec(deployments["composer-ace-step"])["containers"]
    env = env_of(ace_step)
    assert env["COMPOSER_BACKEND"] == "diffusers"
    assert env["COMPOSER_MODEL"] == "/models/acestep-v15-xl-turbo-diffusers"
    assert "COMPOSER_LOG_LEVEL" not in env  # the default composer's settings stay its own
    assert ace_step["resources"]["limits"]["memory"] == "48Gi"
    assert ace_step["resources"]["limits"]["nvidia.com/gpu"] == 1  # the composer's, inherited
    scalers = {tier_of(h): h["spec"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    assert scalers["composer-ace-step"]["maxReplicas"] == 4  # its own override
    assert scalers["composer-stable-audio"]["maxReplicas"] == 8  # autoscaling.composer's
    metric = scalers["composer-ace-step"]["metrics"][0]["pods"]["metric"]["name"]
    assert metric == "composer_queue_depth"


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("moreComposers[0].name=musicgen", "named twice"),
        ("moreComposers[0].name=Ace_Step", "pattern"),
        ("moreComposers[0].gpus=0", "minimum"),
        ("moreComposers[0].modle=/models/x", "additional properties"),
    ],
)
def test_bad_more_composers_are_refused(setting: str, complaint: str) -> None:
    result = run_helm("template", "ww", str(CHART), *profile_args("songs"), f"--set={setting}")
    assert result.returncode != 0
    assert complaint.lower() in result.stderr.lower(), result.stderr


KEDA_SPEC_KEYS = {
    "scaleTargetRef", "minReplicaCount", "maxReplicaCount", "cooldownPeriod", "pollingInterval",
    "idleReplicaCount", "advanced", "triggers", "fallback", "initialCooldownPeriod",
}  # fmt: skip


def test_keda_scaled_objects_are_well_formed() -> None:
    """What KEDA's CRD schema would check, for the fields the chart writes."""
    objects = render("keda")
    scaled = of_kind(objects, "ScaledObject")
    assert {tier_of(s) for s in scaled} == {"gateway", *model_tiers("keda")}
    for obj in scaled:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        spec: dict[str, Any] = obj["spec"]
        assert set(spec) <= KEDA_SPEC_KEYS, set(spec) - KEDA_SPEC_KEYS
        assert isinstance(spec["minReplicaCount"], int) and isinstance(spec["maxReplicaCount"], int)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
        metadata = trigger["metadata"]
        assert set(metadata) == {"serverAddress", "query", "threshold"}
        assert all(isinstance(v, str) for v in metadata.values())  # KEDA takes strings only
        float(metadata["threshold"])
        window = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert window["stabilizationWindowSeconds"] >= 300
