"""Which metrics a PromQL expression reads, and which ones the app exports.

A small lexer rather than a PromQL parser: the dashboards and rules use a plain subset
(selectors, ranges, aggregations with ``by``, functions, arithmetic), and for that subset a
metric name is any identifier that is not a function call, a keyword, a label or a string.
"""

from __future__ import annotations

import functools
import re

from prometheus_client import CollectorRegistry

__all__ = ["PROMETHEUS_BUILTINS", "exported_metric_names", "metric_names"]

PROMETHEUS_BUILTINS = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
"""Series Prometheus itself writes for every scrape target."""

_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"offset", "bool", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> frozenset[str]:
    """The metric names ``expr`` selects (recording-rule names included)."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return frozenset(names)


@functools.cache
def exported_metric_names(app_id: str | None = None) -> frozenset[str]:
    """Every series name a worker serves at ``/metrics``: the project's and Faust's sensors.

    Counters are exposed with ``_total`` (and ``_created``), histograms as ``_bucket``,
    ``_sum`` and ``_count``: the names a query must use, not the names in the code.
    """
    import faust
    from faust.sensors.prometheus import setup_prometheus_sensors

    from monitor import metrics
    from monitor.config import PipelineSettings

    faust_registry = CollectorRegistry(auto_describe=True)
    app = faust.App(app_id or PipelineSettings().app_id, broker="kafka://127.0.0.1:9")
    setup_prometheus_sensors(app, registry=faust_registry)
    names: set[str] = set()
    for registry in (metrics.registry, faust_registry):
        for family in registry.collect():
            names.update(_exposed(family.name, family.type))
    return frozenset(names)


def _exposed(name: str, kind: str) -> tuple[str, ...]:
    if kind == "counter":
        return (f"{name}_total", f"{name}_created")
    if kind == "histogram":
        return (f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created")
    if kind == "summary":
        return (name, f"{name}_sum", f"{name}_count", f"{name}_created")
    if kind == "info":
        return (f"{name}_info",)
    return (name,)
