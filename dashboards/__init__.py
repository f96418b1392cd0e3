"""Grafana dashboards for the monitor, written as code and checked in as JSON.

Code, because a query that names a metric the app does not export would otherwise show an
empty panel in production and nobody would notice: ``dashboards.promql`` checks every query
against the metrics the app registers, at build time and in the tests. JSON in git, because
Grafana provisions files and reviewers read diffs. Regenerate with ``python -m dashboards.build``.
"""

from __future__ import annotations

__all__: list[str] = []
