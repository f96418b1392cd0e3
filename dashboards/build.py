"""``python -m dashboards.build [--check]``: write (or compare) the dashboards' JSON.

The build refuses a dashboard whose queries name a metric the app does not export, so a
renamed metric breaks the build instead of leaving a panel empty in production.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.pipeline import pipeline_dashboard
from dashboards.promql import PROMETHEUS_BUILTINS, exported_metric_names, metric_names
from dashboards.spread import spread_dashboard

__all__ = ["DASHBOARDS", "JSON_DIR", "expressions", "main", "render", "unknown_metrics"]

JSON_DIR = Path(__file__).parent / "json"

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "spread.json": spread_dashboard,
    "pipeline-health.json": pipeline_dashboard,
}


def render(builder: Dashboard) -> str:
    model = json.loads(JSONEncoder().encode(builder.build()))
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number  # the SDK leaves ids unset; Grafana addresses panels by id
    return json.dumps(model, sort_keys=True, indent=2) + "\n"


def expressions(model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable of a dashboard's JSON."""
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel.get("title", "?"), target["expr"]
    for variable in model.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            inner = query.removeprefix("label_values(").rsplit(",", 1)[0]
            yield f"${variable['name']}", inner


def unknown_metrics(model: dict[str, Any], exported: frozenset[str]) -> list[str]:
    allowed = exported | PROMETHEUS_BUILTINS
    return [
        f"{where}: {name}"
        for where, expr in expressions(model)
        for name in sorted(metric_names(expr) - allowed)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    args = parser.parse_args(argv)
    exported = exported_metric_names()
    failed = False
    for name, make in DASHBOARDS.items():
        text = render(make())
        unknown = unknown_metrics(json.loads(text), exported)
        if unknown:
            print(f"{name}: queries name metrics the app does not export:", *unknown, sep="\n  ")
            failed = True
            continue
        path = JSON_DIR / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                print(f"{path} is stale: run python -m dashboards.build")
                failed = True
        else:
            path.write_text(text)
            print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
