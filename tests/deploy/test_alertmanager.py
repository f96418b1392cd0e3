"""Alertmanager's configuration loads in Alertmanager's own checker, and every alerting rule
reaches the team its ``team`` label names: spread to the rights team's channel, the rest to ops."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.conftest import require_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs amtool; skips the test without it, or fails it under CI=true."""
    return subprocess.run(
        [require_binary("amtool"), *args], capture_output=True, text=True, timeout=60
    )


def test_the_configuration_passes_amtool_check_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_is_routed_to_the_receiver_of_its_team() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    alerting = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    assert {rule["labels"]["team"] for rule in alerting} == {"rights", "ops"}
    for rule in alerting:
        labels = [f"alertname={rule['alert']}", *(f"{k}={v}" for k, v in rule["labels"].items())]
        result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == rule["labels"]["team"], rule["alert"]
