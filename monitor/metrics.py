"""Every metric the project exports, defined in one place.

Labels are few and bounded: entity, franchise, platform, kind, and small fixed vocabularies
(outcome, reason, role, device). Never a clip id or a URL: those are unbounded, and one
Prometheus series per clip would sink the server that is meant to show the spread.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "ALERTS",
    "BATCH_SIZE",
    "CLIPS_DISCOVERED",
    "CLIPS_FLAGGED",
    "CLIPS_SCORED",
    "CRAWL_ITEMS_SKIPPED",
    "CRAWL_PASSES",
    "DEADLETTERS",
    "DECODER_RESTARTS",
    "DISCOVERY_TO_ALERT",
    "FLAGGED_SHARES",
    "FLAGGED_VIEWS",
    "FLAGGED_VIEW_VELOCITY",
    "MEDIA_FAILURES",
    "NOTIFICATIONS",
    "NOTIFY_ATTEMPT_FAILURES",
    "NOTIFY_SUMMARIES",
    "REVIEWS",
    "REVIEW_DISMISSED_SHARE",
    "REVIEW_LATENCY",
    "SCORING_SECONDS",
    "SOURCE_PAUSED",
    "SOURCE_QUOTA_USED",
    "STORIES",
    "STORY_COPIES",
    "STORY_TOP",
    "STORY_VIEWS",
    "SYNTHETIC",
    "registry",
]

registry: CollectorRegistry = REGISTRY
"""The registry served at ``/metrics``, shared with Faust's own sensors."""

_ENTITY = ("entity", "franchise", "platform", "kind")
SYNTHETIC = "synthetic"
"""Whether the clip is AI-generated, as ``Synthetic.value`` says: ``ai_generated``,
``not_ai_generated`` or ``unknown`` (three values: the label stays bounded)."""

CLIPS_DISCOVERED = Counter(
    "likeness_clips_discovered",
    "Clip observations sent by crawlers (a clip is observed again while it spreads).",
    ["platform"],
    registry=registry,
)
CRAWL_PASSES = Counter(
    "likeness_crawl_passes",
    "Crawl passes of each platform source, by outcome: ok, errors (some feeds failed; the "
    "others were still read), paused (waiting out a rate limit or a spent quota), standby "
    "(another replica holds the source's lease and crawls it).",
    ["source", "outcome"],
    registry=registry,
)
CRAWL_ITEMS_SKIPPED = Counter(
    "likeness_crawl_items_skipped",
    "Items a platform listed that make no valid record (an over-long id or URL, a date that "
    "does not parse): left out one by one, the rest of their page kept.",
    ["source"],
    registry=registry,
)
SOURCE_PAUSED = Gauge(
    "likeness_source_paused",
    "1 while a platform source waits out a rate limit or a spent daily quota, else 0.",
    ["source"],
    registry=registry,
)
SOURCE_QUOTA_USED = Gauge(
    "likeness_source_quota_used_ratio",
    "Share of a platform source's daily API quota spent today (YouTube: units; counted "
    "before each request is sent).",
    ["source"],
    registry=registry,
)
CLIPS_SCORED = Counter(
    "likeness_clips_scored",
    "Clip observations handled by scorers, by outcome: scored, cached (already scored with "
    "this gallery and these models), failed.",
    ["platform", "outcome"],
    registry=registry,
)
CLIPS_FLAGGED = Counter(
    "likeness_clips_flagged",
    "Clips newly found to show a protected entity (once per clip and entity), by whether "
    "the clip is AI-generated (synthetic: ai_generated, not_ai_generated, unknown).",
    [*_ENTITY, SYNTHETIC],
    registry=registry,
)
ALERTS = Counter(
    "likeness_alerts",
    "Alerts emitted on the alerts topic (one per clip and entity), by whether the clip is "
    "AI-generated (synthetic: ai_generated, not_ai_generated, unknown).",
    [*_ENTITY, SYNTHETIC],
    registry=registry,
)
FLAGGED_VIEWS = Gauge(
    "likeness_flagged_views",
    "Latest total views of the clips flagged for an entity: the spread, by whether the clip "
    "is AI-generated (synthetic).",
    [*_ENTITY, SYNTHETIC],
    registry=registry,
)
FLAGGED_SHARES = Gauge(
    "likeness_flagged_shares",
    "Latest total shares of the clips flagged for an entity, by synthetic.",
    [*_ENTITY, SYNTHETIC],
    registry=registry,
)
STORY_TOP = 5
"""Stories per entity whose copies and views are exported, the most viewed first."""
_STORY = ("entity", "franchise", "kind")
STORIES = Gauge(
    "likeness_stories",
    "Stories of an entity (a viral clip and its copies, on any platform) active within the "
    "story window.",
    list(_STORY),
    registry=registry,
)
STORY_COPIES = Gauge(
    "likeness_story_copies",
    f"Copies in each of an entity's {STORY_TOP} most viewed active stories, by rank (1: the "
    "most viewed); a rank's story may change as stories overtake each other.",
    [*_STORY, "rank"],
    registry=registry,
)
STORY_VIEWS = Gauge(
    "likeness_story_views",
    f"Total views of all copies of each of an entity's {STORY_TOP} most viewed active "
    "stories, by rank (1: the most viewed).",
    [*_STORY, "rank"],
    registry=registry,
)
FLAGGED_VIEW_VELOCITY = Histogram(
    "likeness_flagged_view_velocity",
    "Views per hour of a flagged clip since it was posted, at each observation of it. An "
    "entity's current spread rate is deriv(likeness_flagged_views[15m]) * 3600.",
    ["franchise", "platform", "kind"],
    buckets=(10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000),
    registry=registry,
)
MEDIA_FAILURES = Counter(
    "likeness_media_failures",
    "Clips whose media could not be fetched or decoded, by reason.",
    ["platform", "reason"],
    registry=registry,
)
DECODER_RESTARTS = Counter(
    "likeness_decoder_restarts",
    "Times the decode process pool was rebuilt because a decode process died (OOM, crash).",
    ["device"],
    registry=registry,
)
DEADLETTERS = Counter(
    "likeness_deadletters",
    "Records sent to the deadletter topic, by the topic they came from.",
    ["topic"],
    registry=registry,
)
SCORING_SECONDS = Histogram(
    "likeness_scoring_seconds",
    "Time to fetch, decode and score one batch of clips, per clip.",
    ["device"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=registry,
)
BATCH_SIZE = Histogram(
    "likeness_scorer_batch_size",
    "Clips per scorer batch (one forward pass per model per batch).",
    ["device"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=registry,
)
DISCOVERY_TO_ALERT = Histogram(
    "likeness_discovery_to_alert_seconds",
    "From a clip's first observation to its alert.",
    ["platform"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
    registry=registry,
)
NOTIFICATIONS = Counter(
    "likeness_notifications",
    "Alerts handled by a notifier sink, by outcome: sent (delivered), parked (on the retry "
    "topic while the receiver fails), failed (refused by the receiver or given up; sent to "
    "deadletter), suppressed (flood control: counted in the entity's summary instead), "
    "grouped (a copy of a story past the sink's own messages per story: counted in the story).",
    ["sink", *_ENTITY, "outcome"],
    registry=registry,
)
NOTIFY_ATTEMPT_FAILURES = Counter(
    "likeness_notify_attempt_failures",
    "Failed delivery attempts, retried or not, by reason: rate_limited (429), server_error "
    "(5xx), network, rejected (other 4xx).",
    ["sink", "reason"],
    registry=registry,
)
NOTIFY_SUMMARIES = Counter(
    "likeness_notify_summaries",
    "Flood-control summaries (one per entity, window and sink), by outcome: sent, failed.",
    ["sink", "entity", "franchise", "kind", "outcome"],
    registry=registry,
)
REVIEWS = Counter(
    "likeness_reviews",
    "Reviewer decisions on alerts, by decision: confirm, dismiss (a false positive), undo.",
    ["entity", "franchise", "decision"],
    registry=registry,
)
REVIEW_DISMISSED_SHARE = Gauge(
    "likeness_review_dismissed_share",
    "Of an entity's reviewed alerts, the share dismissed as false positives: one minus an "
    "estimate of its precision.",
    ["entity", "franchise"],
    registry=registry,
)
REVIEW_LATENCY = Histogram(
    "likeness_review_latency_seconds",
    "From an alert to a reviewer's first decision on it.",
    ["decision"],
    buckets=(60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
    registry=registry,
)
