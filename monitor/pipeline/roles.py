"""The roles, each installed only if the worker runs it: crawl -> score -> decide -> notify; review.

- crawl: each source polled on a timer; every observation goes to ``clips.discovered``. It
  follows ``alerts`` whole (``feed.py``) so that a flagged clip is watched while it spreads,
  whichever worker flagged it.
- score: observations scored by ``ScoringService`` as soon as each clip's media are in, in
  batches of what is ready (``score_flow.py``); every one yields a ``ClipScored`` on
  ``clips.scored``, with scores or a failure reason, before its event is acknowledged.
- decide: keeps each clip's spread, and emits one ``Alert`` per (clip, entity) to ``alerts``,
  marked in the state store only after the broker acknowledged it, with its record. A broker
  that is not the one they were sent to (the embedded one, restarted empty) gets the last
  ``alert_resend_window_s`` of them again: one notify had not taken yet would be lost.
- notify: prints one line per alert on the console, and hands it to the ``Notifier``, which
  delivers it to the configured sinks (Slack, webhook) or parks it on ``alerts.retry``; the
  event is acknowledged only after that. An agent on ``alerts.retry`` delivers parked alerts
  when due, and a timer sends the flood-control summaries.
- review: keeps alerts and reviewers' decisions (``reviews`` topic) in a store on this host
  and serves the review page, ``/review`` (``monitor.pipeline.review_role``).

A record that does not parse, or that a role fails on for any other reason of its own (not
the broker's), goes to ``deadletter`` and its partition moves on (``Pipeline.guarded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError

from monitor import metrics
from monitor.config import ROLES, Settings
from monitor.errors import MonitorError, RecordError
from monitor.pipeline.app import Pipeline, bare_pipeline
from monitor.pipeline.broker import bootstrap_servers, cluster_id
from monitor.pipeline.feed import TopicFeed
from monitor.pipeline.poison import describe
from monitor.pipeline.review_role import install_review
from monitor.pipeline.stories import Copy, StoryBook
from monitor.pipeline.worker_state import EntitySpread, StateStore
from monitor.records import (
    Alert,
    AlertEntity,
    ClipScored,
    ClipSeen,
    DeadLetter,
    ParkedAlert,
    decode,
    encode,
    utcnow,
)
from monitor.sources.base import Source
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler

if TYPE_CHECKING:
    from monitor.pipeline.scoring_service import ScoringService

__all__ = ["crawl_pass", "create_pipeline", "follow_alerts", "install_roles", "resend_alerts"]

log = logging.getLogger(__name__)


def create_pipeline(
    settings: Settings, broker: str, *, roles: Iterable[str] = ROLES, sources: Sequence[Source] = ()
) -> Pipeline:
    """The app with the given roles installed; ``broker`` is a ``kafka://`` URL."""
    pipeline = bare_pipeline(settings, broker, roles=roles, sources=sources)
    install_roles(pipeline)
    return pipeline


def install_roles(pipeline: Pipeline) -> None:
    for role, install in (
        ("crawl", _crawl),
        ("score", _score),
        ("decide", _decide),
        ("notify", _notify),
        ("review", _review),
    ):
        if role in pipeline.roles:
            install(pipeline)


def _review(pipeline: Pipeline) -> None:

    install_review(pipeline)


def _crawl(pipeline: Pipeline) -> None:
    discovered = pipeline.topics["clips.discovered"]
    for source in pipeline.sources:
        interval = getattr(source, "interval_s", pipeline.settings.pipeline.crawl_interval_s)
        lease_s = max(CRAWL_LEASE_INTERVALS * interval, CRAWL_LEASE_MIN_S)
        pipeline.app.timer(interval, name=f"crawl.{source.name}")(
            crawl_pass(source, discovered, lease_s=lease_s)
        )
    states = {id(s.state): s.state for s in pipeline.sources if isinstance(s, Crawler)}
    for state in states.values():
        pipeline.app.task(follow_alerts(pipeline, state).run_forever)


def follow_alerts(pipeline: Pipeline, state: CrawlState) -> TopicFeed:
    """Every flagged clip, whichever worker flagged it, into the crawl state: it is watched."""

    async def flag(record: ConsumerRecord[bytes, bytes]) -> None:
        with contextlib.suppress(RecordError):  # the notifier dead-letters a bad alert
            await state.run(state.mark_flagged, decode(Alert, record.value or b"").clip.key)

    return TopicFeed(bootstrap_servers(pipeline.broker), ("alerts",), state, flag)


CRAWL_LEASE_INTERVALS = 3
CRAWL_LEASE_MIN_S = 60.0
"""A crawler's lease on its source lasts this many crawl intervals, and at least this long:
renewed at each pass and each batch, so a replica that dies is replaced within it."""
CRAWL_HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
"""This process, as the holder of crawl leases."""


class _LeaseLost(Exception):
    """Another replica took the source's lease while this one was crawling it."""


def crawl_pass(
    source: Source, discovered: Any, *, lease_s: float = CRAWL_LEASE_MIN_S
) -> Callable[[], Awaitable[None]]:
    """One poll of ``source`` to the end of its listing, as a timer body (no arguments). A
    platform crawler crawls only while it holds the source's lease in its crawl state: of the
    replicas that share one (PostgreSQL), one crawls and the others stand by."""

    async def crawl() -> None:
        if isinstance(source, Crawler):
            await _crawl_batches(source, discovered, lease_s)
            return
        sent = 0
        try:
            async for seen in source.poll():
                await discovered.send(key=seen.key.encode(), value=encode(seen))
                metrics.CLIPS_DISCOVERED.labels(seen.platform).inc()
                sent += 1
        except MonitorError as exc:
            log.warning("crawl of %s stopped early after %d clips: %s", source.name, sent, exc)

    return crawl


async def _crawl_batches(crawler: Crawler, discovered: Any, lease_s: float) -> None:
    """A platform crawl: each batch (fastest-spreading clip first) is sent and acknowledged
    by the broker before the crawler commits its cursor, so a restart loses no page."""

    async def lease() -> bool:
        state = crawler.state
        return await state.run(state.hold_lease, crawler.name, CRAWL_HOLDER, time.time(), lease_s)

    if not await lease():
        metrics.CRAWL_PASSES.labels(crawler.name, "standby").inc()
        return

    async def emit(batch: Sequence[ClipSeen]) -> None:
        if not await lease():  # the page is not sent: its cursor stays for the new holder
            raise _LeaseLost(crawler.name)
        deliveries = [
            await discovered.send(key=seen.key.encode(), value=encode(seen)) for seen in batch
        ]
        for delivery in deliveries:
            await delivery
        for seen in batch:
            metrics.CLIPS_DISCOVERED.labels(seen.platform).inc()

    outcome = "ok"
    try:
        await crawler.run(emit)
    except MonitorError as exc:
        log.warning("crawl of %s: %s", crawler.name, exc)
        outcome = "errors"
    except _LeaseLost:
        log.warning("crawl of %s: another replica holds its lease now; standing by", crawler.name)
        outcome = "standby"
    paused = crawler.report.paused_until is not None and crawler.report.paused_until > utcnow()
    metrics.CRAWL_PASSES.labels(crawler.name, "paused" if paused else outcome).inc()
    if crawler.report.skipped:
        metrics.CRAWL_ITEMS_SKIPPED.labels(crawler.name).inc(crawler.report.skipped)
    metrics.SOURCE_PAUSED.labels(crawler.name).set(1 if paused else 0)
    if crawler.quota is not None:
        used = crawler.quota.used() / max(crawler.quota.spec.units, 1)
        metrics.SOURCE_QUOTA_USED.labels(crawler.name).set(used)


def _score(pipeline: Pipeline) -> None:
    settings = pipeline.settings.pipeline
    scored_topic = pipeline.topics["clips.scored"]

    @pipeline.app.agent(pipeline.topics["clips.discovered"], name="score")
    async def score(stream: Any) -> None:
        from monitor.pipeline.score_flow import ScoreFlow

        # Loading models takes seconds: off the event loop, so the worker keeps heartbeating.
        service = await asyncio.get_running_loop().run_in_executor(None, _scoring_service, pipeline)
        pipeline.health["gallery_version"] = service.scorer.gallery.version
        pipeline.health["device"] = service.device
        pipeline.checks["score"] = service.health.problem

        # Each event is acknowledged only once its verdict is on clips.scored (or it is
        # dead-lettered): events are taken unacknowledged, and a slow clip's event stays so
        # while the clips after it are scored and acknowledged (score_flow.py).
        async def deliver(events: Sequence[Any], record: ClipScored) -> None:
            await pipeline.guarded(events[-1], "score", _send_scored(scored_topic, record))
            pipeline.health["gallery_version"] = service.scorer.gallery.version
            for event in events:
                await stream.ack(event)

        async def reject(events: Sequence[Any], exc: BaseException) -> None:
            await pipeline.dead_letter(events[-1], describe("score", exc))
            for event in events:
                await stream.ack(event)

        flow: ScoreFlow[Any] = ScoreFlow(
            service,
            deliver,
            reject,
            batch_size=settings.batch_size,
            max_in_flight=max(4 * settings.batch_size, 2 * settings.fetch_concurrency),
        )
        try:
            async for events in stream.noack_take(
                settings.batch_size, within=settings.batch_within_s
            ):
                for event in events:
                    try:
                        seen = decode(ClipSeen, event.value)
                    except RecordError as exc:
                        await pipeline.dead_letter(event, str(exc))
                        await stream.ack(event)
                        continue
                    await flow.submit(event, seen)
        finally:
            await flow.close()
            await service.close()


async def _send_scored(scored_topic: Any, record: ClipScored) -> None:
    # ``encode`` trims a verdict too large for the broker; one that cannot fit is a RecordError.
    # Awaited to the broker's acknowledgement: only then may the observation's event be acked.
    await (await scored_topic.send(key=record.clip.key.encode(), value=encode(record)))


def _scoring_service(pipeline: Pipeline) -> ScoringService:
    from monitor.likeness.gallery.built import Gallery
    from monitor.likeness.models import Models
    from monitor.likeness.scoring import Scorer
    from monitor.pipeline.scoring_service import ScoringService

    settings = pipeline.settings
    if settings.pipeline.gallery is None:
        raise MonitorError("no gallery configured (LIKENESS_MONITOR_PIPELINE__GALLERY)")
    scorer = Scorer(
        Gallery.load(settings.pipeline.gallery), Models.load(settings.likeness), settings.likeness
    )
    return ScoringService(scorer, pipeline.state, settings)


def _decide(pipeline: Pipeline) -> None:
    alerts = pipeline.topics["alerts"]
    settings = pipeline.settings
    stories = StoryBook(
        settings.pipeline.store("stories"),
        match_share=settings.likeness.footage_match_share,
        window_s=settings.pipeline.story_window_s,
    )

    @pipeline.app.agent(pipeline.topics["clips.scored"], name="decide")
    async def decide(stream: Any) -> None:
        async for event in stream.events():
            work = _decide_one(pipeline, stories, alerts, event.value)
            await pipeline.guarded(event, "decide", work)

    started = utcnow()  # decide may send (and mark) alerts before the task below runs

    async def resend_sent() -> None:
        while True:
            try:
                cluster = await cluster_id(pipeline.broker)
                await resend_alerts(pipeline.state, alerts, cluster, sent_before=started)
                return
            except (KafkaError, OSError) as exc:
                log.warning("sent alerts not checked against the broker yet: %s", exc)
                await asyncio.sleep(5.0)

    pipeline.app.task(resend_sent)

    async def publish_stories() -> None:
        await stories.run(_publish_stories, stories)

    pipeline.app.timer(STORY_GAUGES_REFRESH_S, name="decide.stories")(publish_stories)


async def resend_alerts(
    state: StateStore, alerts: Any, cluster: str, *, sent_before: datetime
) -> int:
    """Send the alerts of the last ``state.resend_window_s`` again if the broker is not the
    one they were sent to (``cluster`` differs: the embedded broker restarted empty, and an
    alert notify had not taken went with it); returns how many. Only those sent before
    ``sent_before`` (this worker's start) can have gone to another broker: the ones decide
    sent since went to this one. Consumers drop repeats by key (notify per sink, the review
    store by alert id), so only the lost ones are acted on."""
    if await state.run(state.followed_broker) == cluster:
        return 0
    since = utcnow() - timedelta(seconds=state.resend_window_s)
    deliveries = []
    for raw in await state.run(state.sent_since, since, sent_before):
        try:
            alert = decode(Alert, raw)
        except RecordError as exc:  # written by another version: pass it over, do not crash
            log.error("a sent alert kept for resending cannot be read: %s", exc)
            continue
        key = alert.story.story_id if alert.story is not None else alert.key
        deliveries.append(await alerts.send(key=key.encode(), value=raw))
    for delivery in deliveries:
        await delivery
    await state.run(state.follow_broker, cluster)  # after: a crash midway sends them all again
    if deliveries:
        log.warning("%d sent alerts sent again to a new broker", len(deliveries))
    return len(deliveries)


async def _decide_one(
    pipeline: Pipeline, stories: StoryBook, alerts: Any, raw: bytes | None
) -> None:
    scored = decode(ClipScored, raw)
    state, seen = pipeline.state, scored.observation
    first_seen = await state.run(
        state.observe,
        seen.key,
        seen.platform,
        seen.observed_at,
        seen.views,
        seen.shares,
        scored.synthetic.value,
    )
    await stories.run(stories.observe, seen.key, seen.observed_at, seen.views)
    for entity in scored.flagged:
        labels = (
            entity.entity_id,
            entity.franchise or "",
            seen.platform,
            entity.kind,
            scored.synthetic.value,
        )
        if await state.run(state.flag, seen.key, entity.entity_id, entity.franchise, entity.kind):
            metrics.CLIPS_FLAGGED.labels(*labels).inc()
        velocity = _views_per_hour(seen)
        if velocity is not None:
            metrics.FLAGGED_VIEW_VELOCITY.labels(
                entity.franchise or "", seen.platform, entity.kind
            ).observe(velocity)
        story = await stories.run(
            stories.join,
            Copy(
                clip_key=seen.key,
                entity=entity.entity_id,
                franchise=entity.franchise or "",
                kind=entity.kind,
                platform=seen.platform,
                footprint=scored.footprint,
                seen_at=seen.observed_at,
                views=seen.views,
            ),
        )
        key = f"{seen.key}:{entity.entity_id}"
        if await state.run(state.alert_sent, key):
            continue
        alert = Alert(
            alert_id=Alert.id_for(seen.key, entity.entity_id),
            entity=AlertEntity(
                id=entity.entity_id,
                name=entity.name,
                kind=entity.kind,
                franchise=entity.franchise,
                owner=entity.owner,
            ),
            clip=scored.clip,
            score=entity.score,
            threshold=entity.threshold,
            evidence=entity.evidence,
            gallery_version=scored.gallery_version,
            first_seen=first_seen,
            observed_at=seen.observed_at,
            views=seen.views,
            shares=seen.shares,
            posted_at=seen.posted_at,
            synthetic=scored.synthetic,
            story=story,
        )
        record = encode(alert)
        # Keyed by story: one notify worker takes a story's copies, in order (one message).
        delivery = await alerts.send(key=story.story_id.encode(), value=record)
        await delivery  # the broker's acknowledgement, before the key is marked
        await state.run(state.mark_alert, key, alert.alert_id, alert.alerted_at, record)
        metrics.ALERTS.labels(*labels).inc()
        metrics.DISCOVERY_TO_ALERT.labels(seen.platform).observe(
            max((utcnow() - first_seen).total_seconds(), 0.0)
        )
    await state.run(_publish_spread, state)
    if scored.flagged:
        await stories.run(_publish_stories, stories, stories.take_changed())


_SPREAD_LABELS = ("entity", "franchise", "platform", "kind", "synthetic")


def _publish_spread(state: StateStore) -> None:
    """The spread gauges, each series as the state has it now. A clip whose verdict changed
    (a platform label that appeared) moves its views to another ``synthetic`` series; the one
    it left is set to what remains there, zero when nothing does."""
    current: dict[tuple[str, ...], EntitySpread] = {
        (s.entity, s.franchise, s.platform, s.kind, s.synthetic): s for s in state.spread()
    }
    for gauge in (metrics.FLAGGED_VIEWS, metrics.FLAGGED_SHARES):
        # A series is zeroed, never removed: a vanished one would read as a gap.
        for family in gauge.collect():
            for sample in family.samples:
                series = tuple(sample.labels[name] for name in _SPREAD_LABELS)
                if series not in current:
                    gauge.labels(*series).set(0)
    for series, spread in current.items():
        metrics.FLAGGED_VIEWS.labels(*series).set(spread.views)
        metrics.FLAGGED_SHARES.labels(*series).set(spread.shares)


STORY_GAUGES_REFRESH_S = 60.0
"""How often decide reads every entity's story gauges again: a flagged record refreshes only
the entities whose stories it changed, so a story that leaves the window by time alone, with no
new copy or count, drops out of its entity's gauges at this interval."""


def _publish_stories(stories: StoryBook, entities: Collection[str] | None = None) -> None:
    """The story gauges of ``entities`` (None: all) as the book has them now. An entity or
    rank without an active story reads 0 (zeroed, never removed: a vanished series would read
    as a gap). Only the entities whose stories changed are read on each flagged record: the
    book's query over every active story is too slow to run per record."""
    if entities is not None and not entities:
        return
    top = {(s.entity, s.franchise, s.kind): s for s in stories.spread(metrics.STORY_TOP, entities)}
    known = {
        (sample.labels["entity"], sample.labels["franchise"], sample.labels["kind"])
        for family in metrics.STORIES.collect()
        for sample in family.samples
        if entities is None or sample.labels["entity"] in entities
    }
    for labels in known | set(top):
        spread = top.get(labels)
        ranked = spread.top if spread is not None else ()
        metrics.STORIES.labels(*labels).set(spread.stories if spread is not None else 0)
        for rank in range(1, metrics.STORY_TOP + 1):
            copies, views = ranked[rank - 1] if rank <= len(ranked) else (0, 0)
            metrics.STORY_COPIES.labels(*labels, str(rank)).set(copies)
            metrics.STORY_VIEWS.labels(*labels, str(rank)).set(views)


def _views_per_hour(seen: ClipSeen) -> float | None:
    """Views per hour since the clip was posted; None when the platform gives neither."""
    if seen.views is None or seen.posted_at is None:
        return None
    posted = seen.posted_at if seen.posted_at.tzinfo else seen.posted_at.replace(tzinfo=UTC)
    # At least a minute old: a clip seen seconds after posting would read as millions an hour.
    hours = max((seen.observed_at - posted).total_seconds(), 60.0) / 3600
    return seen.views / hours


def _notify(pipeline: Pipeline) -> None:
    import httpx

    from monitor.alerts.deliveries import DeliveryStore
    from monitor.alerts.notifier import Notifier, build_sinks

    settings = pipeline.settings.notify
    retry_topic, deadletter = pipeline.topics["alerts.retry"], pipeline.topics["deadletter"]

    async def park(parked: ParkedAlert) -> None:
        delivery = await retry_topic.send(key=parked.key.encode(), value=encode(parked))
        await delivery  # the broker has it: now the alert's own event may be acknowledged

    async def reject(alert: Alert, reason: str) -> None:
        letter = DeadLetter.of(encode(alert), reason, "alerts", None, None)
        await (await deadletter.send(key=alert.key.encode(), value=encode(letter)))
        metrics.DEADLETTERS.labels("alerts").inc()

    # One client and store for the worker's life; both go with the process.
    client = httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False)
    store = DeliveryStore(pipeline.settings.pipeline.store("notify"))
    notifier = Notifier(
        build_sinks(settings, client, store),
        store,
        settings,
        park=park,
        reject=reject,
        evidence=pipeline.evidence,
    )

    @pipeline.app.agent(pipeline.topics["alerts"], name="notify")
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            await pipeline.guarded(event, "notify", notify_one(event.value))

    async def notify_one(raw: bytes | None) -> None:
        await notifier.handle(decode(Alert, raw))

    @pipeline.app.agent(pipeline.topics["alerts.retry"], name="notify_retry")
    async def notify_retry(stream: Any) -> None:
        async for event in stream.events():
            await pipeline.guarded(event, "notify", redeliver_one(event.value))

    async def redeliver_one(raw: bytes | None) -> None:
        await notifier.redeliver(decode(ParkedAlert, raw))

    async def resume_parked() -> None:
        # A broker that is not the one the parked alerts were put on (the embedded one,
        # restarted empty) gets them back from the notifier's outbox.
        while True:
            try:
                await notifier.resume(await cluster_id(pipeline.broker))
                return
            except (KafkaError, OSError) as exc:
                log.warning("parked alerts not checked against the broker yet: %s", exc)
                await asyncio.sleep(5.0)

    pipeline.app.task(resume_parked)

    if notifier.sinks:
        pipeline.app.timer(settings.flush_interval_s, name="notify.flush")(notifier.flush)
