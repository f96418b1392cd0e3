"""The Pipeline health dashboard: is every role keeping up, and what fails.

Throughput per role is read where each role's work is counted: crawl by the observations it
sends, score by its verdicts, decide and notify by the records Faust hands them from their
input topics (Faust's sensors, prefixed with the app id).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from dashboards.panels import single_stat, time_series

__all__ = ["UID", "pipeline_dashboard"]

UID = "likeness-pipeline"

_FAUST = "likeness_monitor"
"""Faust's sensor prefix: the app id (``LIKENESS_MONITOR_PIPELINE__APP_ID``), ``-`` as ``_``."""


def _quantiles(metric: str, by: str, window: str) -> list[tuple[str, str]]:
    legend = f" {{{{{by}}}}}" if by else ""
    group = f"le, {by}" if by else "le"
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{window}])))",
            f"p{round(q * 100)}{legend}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def pipeline_dashboard() -> dashboard.Dashboard:
    received = f"{_FAUST}_messages_received_per_topic_total"
    return (
        dashboard.Dashboard("Likeness Monitor: Pipeline health")
        .uid(UID)
        .description("Throughput, latency, failures and batch sizes of the four roles.")
        .tags(["likeness-monitor"])
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_row(dashboard.Row("Now"))
        .with_panel(
            single_stat(
                "Workers up",
                "Monitor workers Prometheus scrapes successfully.",
                'sum(up{job="likeness-monitor"})',
            )
        )
        .with_panel(
            single_stat(
                "Scorer failure ratio (15 m)",
                "Share of observations the scorers could not score.",
                'sum(rate(likeness_clips_scored_total{outcome="failed"}[15m])) '
                "/ sum(rate(likeness_clips_scored_total[15m]))",
                unit="percentunit",
            )
        )
        .with_panel(
            single_stat(
                "Discovery to alert, p90 (1 h)",
                "From a clip's first observation to its alert.",
                "histogram_quantile(0.9, sum by (le) "
                "(rate(likeness_discovery_to_alert_seconds_bucket[1h])))",
                unit="s",
            )
        )
        .with_panel(
            single_stat(
                "Dead letters (1 h)",
                "Records that could not be parsed or delivered.",
                "sum(increase(likeness_deadletters_total[1h]))",
            )
        )
        .with_row(dashboard.Row("Throughput"))
        .with_panel(
            time_series(
                "Throughput per role",
                "Records per second each role handles.",
                [
                    ("sum(rate(likeness_clips_discovered_total[5m]))", "crawl"),
                    ("sum(rate(likeness_clips_scored_total[5m]))", "score"),
                    (f'sum(rate({received}{{topic="clips.scored"}}[5m]))', "decide"),
                    (f'sum(rate({received}{{topic="alerts"}}[5m]))', "notify"),
                ],
                unit="ops",
            )
        )
        .with_panel(
            time_series(
                "Scored observations, by outcome",
                "scored: run through the models; cached: already scored with this gallery; "
                "failed: see media failures.",
                [("sum by (outcome) (rate(likeness_clips_scored_total[5m]))", "{{outcome}}")],
                unit="ops",
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Observations discovered, by platform",
                "What the crawlers send, per platform.",
                [("sum by (platform) (rate(likeness_clips_discovered_total[5m]))", "{{platform}}")],
                unit="ops",
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Consumer lag, by topic",
                "Records on a topic not yet committed by its consumers.",
                [
                    (
                        f"sum by (topic) ({_FAUST}_topic_partition_end_offset "
                        f"- {_FAUST}_topic_partition_offset_commited)",
                        "{{topic}}",
                    )
                ],
            )
        )
        .with_panel(
            time_series(
                "Daily API quota spent, by source",
                "Share of each platform's daily quota spent today; at 100 % the source pauses "
                "until the platform's quota day ends.",
                [("max by (source) (likeness_source_quota_used_ratio)", "{{source}}")],
                unit="percentunit",
            )
        )
        .with_panel(
            time_series(
                "Crawl passes, by source and outcome",
                "ok; errors: some feeds failed, the others were read; paused: waiting out a "
                "rate limit or a spent quota.",
                [
                    (
                        "sum by (source, outcome) (increase(likeness_crawl_passes_total[15m]))",
                        "{{source}} {{outcome}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_row(dashboard.Row("Latency and batches"))
        .with_panel(
            time_series(
                "Discovery to alert",
                "From a clip's first observation to its alert.",
                _quantiles("likeness_discovery_to_alert_seconds", "", "15m"),
                unit="s",
            )
        )
        .with_panel(
            time_series(
                "Scoring time per clip, by device",
                "Fetch, decode and score, per clip of a batch.",
                _quantiles("likeness_scoring_seconds", "device", "5m"),
                unit="s",
            )
        )
        .with_panel(
            time_series(
                "Scorer batch size, by device",
                "Mean clips per scorer batch: near the configured batch size means the "
                "scorers are saturated.",
                [
                    (
                        "sum by (device) (rate(likeness_scorer_batch_size_sum[5m])) "
                        "/ sum by (device) (rate(likeness_scorer_batch_size_count[5m]))",
                        "{{device}}",
                    )
                ],
            )
        )
        .with_panel(
            time_series(
                "Event processing time",
                "Time an agent spends on one event (Faust).",
                _quantiles(f"{_FAUST}_events_runtime_ms", "", "5m"),
                unit="ms",
            )
        )
        .with_row(dashboard.Row("Failures"))
        .with_panel(
            time_series(
                "Media failures, by reason",
                "Clips whose media could not be fetched or decoded.",
                [("sum by (reason) (rate(likeness_media_failures_total[5m]))", "{{reason}}")],
                unit="ops",
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Dead letters, by source topic",
                "Records sent to the deadletter topic.",
                [("sum by (topic) (increase(likeness_deadletters_total[1h]))", "{{topic}}")],
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Notifications, by sink and outcome",
                "sent, parked (waiting on the retry topic), failed, suppressed (flood control).",
                [
                    (
                        "sum by (sink, outcome) (rate(likeness_notifications_total[5m]))",
                        "{{sink}} {{outcome}}",
                    )
                ],
                unit="ops",
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Failed delivery attempts, by sink and reason",
                "Retried or not: rate_limited (429), server_error (5xx), network, rejected.",
                [
                    (
                        "sum by (sink, reason) (rate(likeness_notify_attempt_failures_total[5m]))",
                        "{{sink}} {{reason}}",
                    )
                ],
                unit="ops",
                stacked=True,
            )
        )
    )
