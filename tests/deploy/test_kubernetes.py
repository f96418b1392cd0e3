"""The Kubernetes manifests validate offline against the API schemas (kubernetes-validate,
strict: an unknown field is an error) and place the scorers on GPU nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resources() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in MANIFESTS
        for doc in _documents(path)
    }


MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    for doc in _documents(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    score = _resources()[("Deployment", "score")]
    score["spec"]["template"]["spec"]["containers"][0]["gpu"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(score, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(listed) == sorted(on_disk)


def test_scorers_run_one_per_partition_on_gpu_nodes() -> None:
    resources = _resources()
    partitions = int(
        resources[("ConfigMap", "likeness-monitor")]["data"][
            "LIKENESS_MONITOR_PIPELINE__PARTITIONS"
        ]
    )
    score = resources[("Deployment", "score")]
    assert score["spec"]["replicas"] == partitions
    pod = score["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].endswith(":gpu")
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


def test_every_role_runs_once_reads_the_configmap_and_is_scraped() -> None:
    resources = _resources()
    workloads = {
        name: doc
        for (kind, name), doc in resources.items()
        if kind in {"Deployment", "StatefulSet"}
    }
    assert sorted(workloads) == ["crawl", "decide", "notify", "score"]
    for name, doc in workloads.items():
        template = doc["spec"]["template"]
        (container,) = template["spec"]["containers"]
        assert container["args"] == ["up", "--roles", name]
        assert {"configMapRef": {"name": "likeness-monitor"}} in container["envFrom"]
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_only_notify_reads_the_delivery_secret() -> None:
    resources = _resources()
    readers = [
        name
        for (kind, name), doc in resources.items()
        if kind in {"Deployment", "StatefulSet"}
        and any(
            "secretRef" in s for s in doc["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        )
    ]
    assert readers == ["notify"]
    secret = resources[("Secret", "likeness-monitor-notify")]
    assert all(key.startswith("LIKENESS_MONITOR_NOTIFY__") for key in secret["stringData"])
