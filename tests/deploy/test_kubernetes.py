"""The Kubernetes manifests validate offline against the API schemas (kubernetes-validate,
strict: an unknown field is an error) and place the scorers on GPU nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from monitor.config import ROLES

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


def test_kustomization_applies_no_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secretGenerator" not in kustomization
    applied = [doc for name in kustomization["resources"] for doc in _documents(K8S / name)]
    assert applied
    assert [doc["metadata"]["name"] for doc in applied if doc["kind"] == "Secret"] == []


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


def test_every_role_has_one_workload_reads_the_configmap_and_is_scraped() -> None:
    resources = _resources()
    workloads = {
        name: doc
        for (kind, name), doc in resources.items()
        if kind in {"Deployment", "StatefulSet"}
    }
    assert sorted(workloads) == sorted(ROLES)
    for name, doc in workloads.items():
        template = doc["spec"]["template"]
        (container,) = template["spec"]["containers"]
        assert container["args"] == ["up", "--roles", name]
        assert {"configMapRef": {"name": "likeness-monitor"}} in container["envFrom"]
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def _secret_readers() -> dict[str, list[str]]:
    return {
        name: [
            s["secretRef"]["name"]
            for s in doc["spec"]["template"]["spec"]["containers"][0]["envFrom"]
            if "secretRef" in s
        ]
        for (kind, name), doc in _resources().items()
        if kind in {"Deployment", "StatefulSet"}
    }


def test_roles_read_the_state_secret_and_notify_and_review_their_own() -> None:
    resources = _resources()
    assert _secret_readers() == {
        "crawl": ["likeness-monitor-state"],
        "score": ["likeness-monitor-state"],
        "decide": ["likeness-monitor-state"],
        "notify": ["likeness-monitor-state", "likeness-monitor-notify"],
        "review": ["likeness-monitor-state", "likeness-monitor-review"],
    }
    for secret, section in (("notify", "NOTIFY"), ("review", "REVIEW")):
        data = resources[("Secret", f"likeness-monitor-{secret}")]["stringData"]
        assert all(key.startswith(f"LIKENESS_MONITOR_{section}__") for key in data)
    state = resources[("Secret", "likeness-monitor-state")]["stringData"]
    assert list(state) == ["LIKENESS_MONITOR_PIPELINE__STATE_URL"]
    assert state["LIKENESS_MONITOR_PIPELINE__STATE_URL"].startswith("postgresql://")


def test_the_state_secret_is_required_where_it_is_read() -> None:
    for (kind, name), doc in _resources().items():
        if kind not in {"Deployment", "StatefulSet"}:
            continue
        for source in doc["spec"]["template"]["spec"]["containers"][0]["envFrom"]:
            if source.get("secretRef", {}).get("name") == "likeness-monitor-state":
                # without it a replica would keep its state on its emptyDir, apart from the rest
                assert not source["secretRef"].get("optional"), name


def _state_volume(doc: dict[str, Any], state_dir: str) -> str:
    """The name of the volume a workload mounts at its state folder."""
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    (name,) = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == state_dir]
    return str(name)


@pytest.mark.parametrize("role", ["crawl", "decide", "notify"])
def test_roles_on_postgres_state_run_as_replicated_deployments_without_claims(role: str) -> None:
    resources = _resources()
    assert ("StatefulSet", role) not in resources
    doc = resources[("Deployment", role)]
    assert doc["spec"]["replicas"] > 1
    assert "volumeClaimTemplates" not in doc["spec"]
    pod = doc["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"secretRef": {"name": "likeness-monitor-state"}} in container["envFrom"]
    state_dir = resources[("ConfigMap", "likeness-monitor")]["data"][
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR"
    ]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[_state_volume(doc, state_dir)] == {"name": "state", "emptyDir": {}}
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert set(claims) <= {"shared", "gallery"}, "no claim of its own: its state is shared"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"name": "http", "containerPort": 6066} in container["ports"]


def test_partitioned_roles_scale_no_further_than_the_partitions() -> None:
    resources = _resources()
    partitions = int(
        resources[("ConfigMap", "likeness-monitor")]["data"][
            "LIKENESS_MONITOR_PIPELINE__PARTITIONS"
        ]
    )
    for role in ("score", "decide", "notify"):
        assert resources[("Deployment", role)]["spec"]["replicas"] <= partitions


def test_review_keeps_one_replica_the_gallery_s_one_writer_with_a_volume_of_its_own() -> None:
    resources = _resources()
    assert ("Deployment", "review") not in resources
    review = resources[("StatefulSet", "review")]
    assert review["spec"]["replicas"] == 1
    templates = review["spec"]["volumeClaimTemplates"]
    assert [t["metadata"]["name"] for t in templates] == ["state"]
    state_dir = resources[("ConfigMap", "likeness-monitor")]["data"][
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR"
    ]
    assert _state_volume(review, state_dir) == "state"
    (container,) = review["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_evidence_is_shared_by_the_roles_that_write_serve_and_file_it() -> None:
    resources = _resources()

    def mounts(kind: str, name: str) -> dict[str, tuple[str, bool]]:
        pod = resources[(kind, name)]["spec"]["template"]["spec"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod.get("volumes", [])
            if "persistentVolumeClaim" in v
        }
        return {
            claims[m["name"]]: (m["mountPath"], bool(m.get("readOnly")))
            for m in pod["containers"][0]["volumeMounts"]
            if m["name"] in claims
        }

    shared = resources[("ConfigMap", "likeness-monitor")]["data"][
        "LIKENESS_MONITOR_PIPELINE__SHARED_DIR"
    ]
    assert mounts("Deployment", "score")["shared"] == (shared, False)
    assert mounts("Deployment", "notify")["shared"] == (shared, True)
    assert mounts("StatefulSet", "review")["shared"] == (shared, False)
    assert mounts("Deployment", "score")["gallery"][1] is True
    assert mounts("StatefulSet", "review")["gallery"][1] is False
    assert mounts("Deployment", "crawl")["gallery"][1] is True, "queries come from the gallery"
    for claim in ("shared", "gallery"):
        access = resources[("PersistentVolumeClaim", claim)]["spec"]["accessModes"]
        assert access == ["ReadWriteMany"], "mounted by pods on several nodes"
