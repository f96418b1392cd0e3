"""docker-compose.yml is a valid Compose file (offline, against the vendored compose-spec
schema) and wires the cluster the README describes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from monitor.config import ROLES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def test_compose_file_matches_the_compose_spec_schema() -> None:
    errors = [f"{e.json_path}: {e.message}" for e in _validator().iter_errors(_compose())]
    assert errors == []


def test_the_schema_check_rejects_a_misspelt_service_key() -> None:
    compose = _compose()
    compose["services"]["crawl"]["restart_policy"] = "always"  # not a Compose key
    assert list(_validator().iter_errors(compose))


def test_cluster_has_kraft_kafka_each_role_and_the_observability_stack() -> None:
    services = _compose()["services"]
    assert {
        "kafka",
        "crawl",
        "score",
        "decide",
        "notify",
        "review",
        "prometheus",
        "alertmanager",
        "grafana",
    } <= set(services)
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper service
    assert not any("zookeeper" in name for name in services)
    for role in ROLES:
        assert services[role]["command"] == ["up", "--roles", role]
        broker = services[role]["environment"]["LIKENESS_MONITOR_PIPELINE__BROKER_URL"]
        assert broker == "kafka://kafka:9092"


def test_only_the_scorer_asks_for_a_gpu_and_uses_the_cuda_image() -> None:
    services = _compose()["services"]
    gpu = [name for name, service in services.items() if "deploy" in service]
    assert gpu == ["score"]
    devices = services["score"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["score"]["build"]["target"] == "gpu"
    assert services["crawl"]["build"]["target"] == "cpu"


def test_build_targets_exist_in_the_dockerfile_and_gpu_builds_on_cuda() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    by_name = {
        name: image
        for image, name in re.findall(r"^FROM\s+(\S+)\s+AS\s+(\w+)", dockerfile, re.MULTILINE)
    }
    targets = {s["build"]["target"] for s in _compose()["services"].values() if "build" in s}
    assert targets <= set(by_name)
    assert by_name["gpu"] == "${CUDA_IMAGE}"
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+", dockerfile, re.MULTILINE)


def test_mounted_files_exist_and_grafana_gets_datasource_and_dashboards() -> None:
    services = _compose()["services"]
    for name in ("prometheus", "alertmanager", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["uid"] == "prometheus"  # the uid every generated panel names
    assert sorted(p.name for p in (DEPLOY.parent / "dashboards/json").glob("*.json")) == [
        "pipeline-health.json",
        "spread.json",
    ]


def test_prometheus_scrapes_every_role() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "likeness-monitor"  # the job the rules and dashboards name
    targets = job["static_configs"][0]["targets"]
    assert sorted(t.split(":")[0] for t in targets) == sorted(ROLES)


def _mounts(services: dict[str, Any], name: str) -> dict[str, str]:
    found = {}
    for volume in services[name].get("volumes", []):
        source, target, *mode = volume.split(":")
        found[source] = f"{target}:{mode[0] if mode else 'rw'}"
    return found


def test_volumes_carry_evidence_gallery_and_the_state_that_must_persist() -> None:
    services = _compose()["services"]

    def mounts(name: str) -> dict[str, str]:
        return _mounts(services, name)

    env = services["score"]["environment"]
    shared, gallery = (
        env["LIKENESS_MONITOR_PIPELINE__SHARED_DIR"],
        env["LIKENESS_MONITOR_PIPELINE__GALLERY"],
    )
    assert mounts("score")["shared"] == f"{shared}:rw"
    assert mounts("notify")["shared"] == f"{shared}:ro"
    assert mounts("review")["shared"] == f"{shared}:rw"
    assert gallery.startswith(mounts("score")["gallery"].split(":")[0] + "/")
    assert mounts("score")["gallery"].endswith(":ro")
    assert mounts("review")["gallery"].endswith(":rw")
    assert mounts("crawl")["gallery"].endswith(":ro"), "queries come from the gallery"
    # The stores are in PostgreSQL; review, the gallery's one writer, keeps a volume (a
    # deployment without PostgreSQL keeps its store there); the other roles' state_dir (Faust's
    # data folder) need not persist.
    state_dir = env["LIKENESS_MONITOR_PIPELINE__STATE_DIR"]
    assert mounts("review")["review-state"] == f"{state_dir}:rw"
    for role in ("crawl", "score", "decide", "notify"):
        assert not any(target.startswith(f"{state_dir}:") for target in mounts(role).values())
    assert {"review-state", "postgres-data", "shared", "gallery"} <= set(_compose()["volumes"])


def test_postgres_keeps_its_data_on_a_named_volume_and_reports_its_health() -> None:
    compose = _compose()
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":")[0] == "postgres"
    assert int(postgres["image"].split(":")[1].split(".")[0]) >= 13
    env = postgres["environment"]
    assert env["POSTGRES_USER"] == "likeness"
    assert env["POSTGRES_DB"] == "likeness"
    assert env["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    data = _mounts(compose["services"], "postgres")
    assert data["postgres-data"] == "/var/lib/postgresql/data:rw"
    assert "postgres-data" in compose["volumes"]  # named, so it outlives the container
    test = postgres["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert "pg_isready" in test[1]
    assert "ports" not in postgres, "reached by the roles on the compose network only"


def test_every_role_keeps_its_state_in_the_postgres_service_and_waits_for_it() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]["environment"]
    urls = {
        role: services[role]["environment"]["LIKENESS_MONITOR_PIPELINE__STATE_URL"]
        for role in ROLES
    }
    (url,) = set(urls.values())  # one database shared by every role and replica
    assert url == (
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    for role in ROLES:
        depends = services[role]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends["kafka"] == {"condition": "service_healthy"}
