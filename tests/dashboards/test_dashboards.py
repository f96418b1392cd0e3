"""The checked-in dashboards are what the generator writes, and every query they hold reads
metrics the monitor actually exports."""

from __future__ import annotations

import json

import pytest

from dashboards.build import DASHBOARDS, JSON_DIR, expressions, main, render, unknown_metrics
from dashboards.promql import exported_metric_names, metric_names


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_checked_in_json_is_what_the_generator_writes(name: str) -> None:
    assert (JSON_DIR / name).read_text() == render(DASHBOARDS[name]()), (
        "stale: run python -m dashboards.build"
    )


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_query_names_only_exported_metrics(name: str) -> None:
    model = json.loads((JSON_DIR / name).read_text())
    queries = list(expressions(model))
    assert len(queries) >= 10
    assert unknown_metrics(model, exported_metric_names()) == []


def test_an_unexported_metric_in_a_panel_is_reported() -> None:
    model = {"panels": [{"title": "Views", "targets": [{"expr": "sum(likeness_flagged_view)"}]}]}
    assert unknown_metrics(model, exported_metric_names()) == ["Views: likeness_flagged_view"]


def test_exported_names_use_the_exposition_suffixes() -> None:
    exported = exported_metric_names()
    assert {"likeness_clips_flagged_total", "likeness_flagged_views"} <= exported
    assert {"likeness_scoring_seconds_bucket", "likeness_scoring_seconds_count"} <= exported
    assert "likeness_monitor_messages_received_per_topic_total" in exported  # Faust, app prefix
    assert "likeness_clips_flagged" not in exported


def test_metric_names_skips_functions_labels_strings_and_variables() -> None:
    expr = (
        'sum by (entity, le) (rate(likeness_flagged_view_velocity_bucket{franchise=~"$franchise"}'
        "[5m])) / on (entity) group_left likeness:flagged_views:deriv1h offset 5m > bool 3"
    )
    assert metric_names(expr) == {
        "likeness_flagged_view_velocity_bucket",
        "likeness:flagged_views:deriv1h",
    }


def test_spread_dashboard_breaks_down_by_franchise_entity_and_platform() -> None:
    model = json.loads((JSON_DIR / "spread.json").read_text())
    variables = [v["name"] for v in model["templating"]["list"]]
    assert variables == ["franchise", "entity", "platform"]
    exprs = " ".join(expr for _, expr in expressions(model))
    for breakdown in ("by (franchise)", "by (entity)", "by (platform)", "topk(10"):
        assert breakdown in exprs
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))


def test_build_check_passes_on_the_checked_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
