"""The Spread dashboard: how far the flagged clips of each franchise and entity have travelled.

Views and shares are gauges of the latest counts (the decide role re-sums them as clips are
observed again), so "over time" is the gauge itself and "how fast" is its derivative; flagged
clips and alerts are counters, read with ``increase``. Flagged clips and alerts carry a
``synthetic`` label (ai_generated, not_ai_generated, unknown: whether a C2PA manifest, the
platform's label or the caption says a generator made the clip), so AI-generated spread is
charted apart from the rest.

A story is a viral clip and its copies on every platform, per entity (decide groups copies by
their frames' hashes). Stories are exported for each entity's five most viewed active ones, by
rank, never by story id: a label per story would be unbounded.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from dashboards.panels import bars, label_variable, single_stat, time_series

__all__ = ["UID", "spread_dashboard"]

UID = "likeness-spread"

_SEL = 'franchise=~"$franchise", entity=~"$entity", platform=~"$platform"'
_SEL_FP = 'franchise=~"$franchise", platform=~"$platform"'
_SEL_STORY = 'franchise=~"$franchise", entity=~"$entity"'


def spread_dashboard() -> dashboard.Dashboard:
    views = f"likeness_flagged_views{{{_SEL}}}"
    flagged = f"likeness_clips_flagged_total{{{_SEL}}}"
    generated = f'likeness_clips_flagged_total{{{_SEL}, synthetic="ai_generated"}}'
    return (
        dashboard.Dashboard("Likeness Monitor: Spread")
        .uid(UID)
        .description(
            "Clips found showing a protected actor or character: how many, how many views, "
            "how fast, per franchise, entity and platform."
        )
        .tags(["likeness-monitor"])
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(label_variable("franchise", "Franchise", "likeness_flagged_views"))
        .with_variable(label_variable("entity", "Entity", "likeness_flagged_views"))
        .with_variable(label_variable("platform", "Platform", "likeness_flagged_views"))
        .with_row(dashboard.Row("Now"))
        .with_panel(
            single_stat(
                "Flagged clips",
                "Clips found showing a selected entity, all time (one per clip and entity).",
                f"sum({flagged})",
            )
        )
        .with_panel(
            single_stat(
                "AI-generated flagged clips",
                "Flagged clips that a C2PA manifest, the platform's label or the caption says "
                "a generator made, all time.",
                f"sum({generated})",
            )
        )
        .with_panel(
            single_stat(
                "Views of flagged clips",
                "Latest total views of those clips.",
                f"sum({views})",
            )
        )
        .with_panel(
            single_stat(
                "Views of AI-generated flagged clips",
                "Latest total views of the flagged clips that a C2PA manifest, the platform's "
                "label or the caption says a generator made.",
                f'sum(likeness_flagged_views{{{_SEL}, synthetic="ai_generated"}})',
            )
        )
        .with_panel(
            single_stat(
                "Shares of flagged clips",
                "Latest total shares of those clips.",
                f"sum(likeness_flagged_shares{{{_SEL}}})",
            )
        )
        .with_panel(
            single_stat(
                "Views per hour",
                "How fast the views of flagged clips grow, over the last 15 minutes.",
                f"sum(deriv({views}[15m])) * 3600",
            )
        )
        .with_row(dashboard.Row("Over time"))
        .with_panel(
            time_series(
                "Views of flagged clips, by franchise",
                "Latest total views of the clips flagged for each franchise.",
                [(f"sum by (franchise) ({views})", "{{franchise}}")],
            )
        )
        .with_panel(
            time_series(
                "Views of flagged clips, by entity",
                "Latest total views of the clips flagged for each entity.",
                [(f"sum by (entity) ({views})", "{{entity}}")],
            )
        )
        .with_panel(
            time_series(
                "Newly flagged clips per hour, by franchise",
                "Clips found showing an entity of the franchise for the first time.",
                [(f"sum by (franchise) (increase({flagged}[1h]))", "{{franchise}}")],
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Newly flagged clips per hour, AI-generated or not",
                "By what says whether a generator made the clip: ai_generated, "
                "not_ai_generated (a C2PA capture or the platform says so) or unknown.",
                [(f"sum by (synthetic) (increase({flagged}[1h]))", "{{synthetic}}")],
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Newly flagged AI-generated clips per hour, by entity",
                "Which entities generators are being prompted with.",
                [(f"sum by (entity) (increase({generated}[1h]))", "{{entity}}")],
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Views per hour, by entity",
                "The spread rate: growth of the flagged clips' views (deriv over 15 minutes).",
                [(f"sum by (entity) (deriv({views}[15m])) * 3600", "{{entity}}")],
            )
        )
        .with_panel(
            time_series(
                "Views per hour of a flagged clip since posting (p50, p90)",
                "Per-clip speed at each observation, by franchise: how viral the typical "
                "flagged clip is, as opposed to how many there are.",
                [
                    (
                        "histogram_quantile(0.5, sum by (le, franchise) "
                        f"(rate(likeness_flagged_view_velocity_bucket{{{_SEL_FP}}}[30m])))",
                        "p50 {{franchise}}",
                    ),
                    (
                        "histogram_quantile(0.9, sum by (le, franchise) "
                        f"(rate(likeness_flagged_view_velocity_bucket{{{_SEL_FP}}}[30m])))",
                        "p90 {{franchise}}",
                    ),
                ],
            )
        )
        .with_panel(
            time_series(
                "Alerts per hour, by entity",
                "Alerts emitted on the alerts topic (one per clip and entity).",
                [
                    (
                        f"sum by (entity) (increase(likeness_alerts_total{{{_SEL}}}[1h]))",
                        "{{entity}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_row(dashboard.Row("Stories: a viral clip and its copies"))
        .with_panel(
            single_stat(
                "Active stories",
                "Viral clips of the selected entities with a copy seen within the story "
                "window; each counts all its copies, on every platform, once.",
                f"sum(likeness_stories{{{_SEL_STORY}}})",
            )
        )
        .with_panel(
            single_stat(
                "Copies of the most viewed story",
                "Re-posts of the single most viewed viral clip of the selected entities.",
                f'max(likeness_story_copies{{{_SEL_STORY}, rank="1"}})',
            )
        )
        .with_panel(
            time_series(
                "Copies per story (each entity's five most viewed stories)",
                "How many re-posts each of the most viewed stories has collected; rank 1 is "
                "an entity's most viewed story.",
                [
                    (
                        f"max by (entity, rank) (likeness_story_copies{{{_SEL_STORY}}})",
                        "{{entity}} #{{rank}}",
                    )
                ],
            )
        )
        .with_panel(
            time_series(
                "Views per story (each entity's five most viewed stories)",
                "Total views of all copies of each of the most viewed stories.",
                [
                    (
                        f"max by (entity, rank) (likeness_story_views{{{_SEL_STORY}}})",
                        "{{entity}} #{{rank}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("Top entities and platforms"))
        .with_panel(
            bars(
                "Top entities by views",
                "The ten entities whose flagged clips have the most views now.",
                f"topk(10, sum by (entity, franchise) ({views}))",
                "{{entity}} ({{franchise}})",
            )
        )
        .with_panel(
            bars(
                "Top entities by newly flagged clips, last 24 h",
                "The ten entities with the most clips flagged in the last day.",
                f"topk(10, sum by (entity, franchise) (increase({flagged}[24h])))",
                "{{entity}} ({{franchise}})",
            )
        )
        .with_panel(
            time_series(
                "Views of flagged clips, by platform",
                "Where the flagged clips are watched.",
                [(f"sum by (platform) ({views})", "{{platform}}")],
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Newly flagged clips per hour, by platform",
                "Where flagged clips are being found.",
                [(f"sum by (platform) (increase({flagged}[1h]))", "{{platform}}")],
                stacked=True,
            )
        )
        .with_row(dashboard.Row("Review"))
        .with_panel(
            time_series(
                "Share of reviewed alerts dismissed, by entity",
                "Dismissed as false positives over reviewed: one minus a precision estimate. "
                "Every review replica reports it: the largest is shown.",
                [
                    (
                        "max by (entity) (likeness_review_dismissed_share"
                        '{entity=~"$entity", franchise=~"$franchise"})',
                        "{{entity}}",
                    )
                ],
            )
        )
        .with_panel(
            time_series(
                "Reviews per hour, by decision",
                "Confirmations, dismissals and undos by reviewers. Every review replica counts "
                "every decision: the largest count is shown, not their sum.",
                [
                    (
                        "max by (decision) (sum by (decision, instance) (increase("
                        'likeness_reviews_total{entity=~"$entity", franchise=~"$franchise"}[1h])))',
                        "{{decision}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            time_series(
                "Time from alert to review (p50, p90)",
                "How long alerts wait for a reviewer's first decision.",
                [
                    (
                        "histogram_quantile(0.5, sum by (le) "
                        "(rate(likeness_review_latency_seconds_bucket[6h])))",
                        "p50",
                    ),
                    (
                        "histogram_quantile(0.9, sum by (le) "
                        "(rate(likeness_review_latency_seconds_bucket[6h])))",
                        "p90",
                    ),
                ],
            )
        )
    )
