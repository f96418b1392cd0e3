"""The few panel shapes the dashboards use, over grafana-foundation-sdk's builders.

Every panel reads the one Prometheus datasource that deploy/grafana provisions (uid
``prometheus``), and every query goes through ``query`` so that the build can list them.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

__all__ = [
    "DATASOURCE",
    "bars",
    "label_variable",
    "query",
    "single_stat",
    "time_series",
]

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")

Query = tuple[str, str]
"""A PromQL expression and its legend (``{{label}}`` templates allowed)."""


def query(expr: str, legend: str, ref: str, *, instant: bool = False) -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    built = built.datasource(DATASOURCE)
    return built.instant() if instant else built.range()


def _refs(queries: list[Query], *, instant: bool = False) -> list[prometheus.Dataquery]:
    return [
        query(expr, legend, chr(ord("A") + i), instant=instant)
        for i, (expr, legend) in enumerate(queries)
    ]


def time_series(
    title: str,
    description: str,
    queries: list[Query],
    *,
    unit: str = "short",
    width: int = 12,
    stacked: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(20 if stacked else 5)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .targets(list(_refs(queries)))
    )
    return panel


def single_stat(title: str, description: str, expr: str, *, unit: str = "short") -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(4)
        .graph_mode(BigValueGraphMode.AREA)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .targets(list(_refs([(expr, title)])))
    )


def bars(
    title: str, description: str, expr: str, legend: str, *, unit: str = "short"
) -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(12)
        .height(8)
        .orientation(VizOrientation.HORIZONTAL)
        .display_mode(BarGaugeDisplayMode.GRADIENT)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .targets(list(_refs([(expr, legend)], instant=True)))
    )


def label_variable(name: str, label: str, metric: str) -> dashboard.QueryVariable:
    """A multi-value drop-down of the values ``label`` takes on ``metric``, "All" by default."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )
