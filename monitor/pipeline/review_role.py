"""The review role: keeps alerts and decisions in the review store, and serves ``/review``.

The store is fed from the ``alerts`` topic (what there is to review) and the ``reviews`` topic
(what reviewers decided; the topic is the source of truth, the store its view on this host),
both read whole by every worker that runs this role (``feed.py``), so any number of replicas
each serve a complete page and learn every decision.

A dismissal also teaches the gallery (``teach.py``): its evidence joins the negatives and the
gallery is rebuilt on a timer, which the scorers pick up without a restart.

The store is a view of the topics, so a record that parsed must reach it: only a record that
does not parse is dead-lettered. Any other failure to apply one (SQLite locked or busy, a disk
error) stops the feed, which reads the record again from its stored position (``ReadAgain``).

Metrics are counted when a decision first reaches this host's store, once per decision
whichever way it came (the page that made it, or the topic); with several replicas, each
counts it, so sum them with ``max`` rather than ``sum`` across instances.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from aiokafka import ConsumerRecord

from monitor import metrics
from monitor.errors import ReadAgain, RecordError
from monitor.pipeline.app import Pipeline
from monitor.pipeline.broker import bootstrap_servers
from monitor.pipeline.feed import TopicFeed
from monitor.pipeline.poison import broker_trouble
from monitor.records import Alert, Review, decode, encode
from monitor.review.access import Access
from monitor.review.decisions import Applied, ReviewStore
from monitor.review.page import ROUTES, Handler, ReviewPage
from monitor.review.teach import GalleryTeacher, learn

__all__ = ["apply_review", "install_review"]

log = logging.getLogger(__name__)


def apply_review(store: ReviewStore, review: Review) -> Applied:
    """Apply a decision to the store, and count it the first time it is seen here."""
    applied = store.apply(review)
    if applied.new and applied.alert is not None:
        entity = applied.alert.entity
        franchise = entity.franchise or ""
        metrics.REVIEWS.labels(entity.id, franchise, review.decision).inc()
        if applied.first_decision_after_s is not None:
            metrics.REVIEW_LATENCY.labels(review.decision).observe(applied.first_decision_after_s)
        share = store.dismissed_share(entity.id)
        if share is not None:
            metrics.REVIEW_DISMISSED_SHARE.labels(entity.id, franchise).set(share)
    return applied


def install_review(pipeline: Pipeline) -> TopicFeed:
    """Serve the page and feed its store; the feed is returned for tests to hand it records."""
    settings = pipeline.settings
    store = ReviewStore(settings.pipeline.store("review"))
    reviews = pipeline.topics["reviews"]
    teacher = GalleryTeacher(settings.pipeline.gallery, settings.likeness, settings.decode)

    def decide(review: Review) -> None:
        applied = apply_review(store, review)
        if applied.new and applied.alert is not None and teacher.folder is not None:
            teacher.pending |= learn(
                review, applied.alert, settings.pipeline.shared_root, teacher.folder
            )

    def catch_up(alert: Alert) -> None:
        """A decision that came before its alert (two topics, no order) is learned now."""
        known = store.get(alert.alert_id)
        if known is None or known.state == "new" or teacher.folder is None:
            return
        review = Review(
            alert_id=alert.alert_id,
            decision="confirm" if known.state == "confirmed" else "dismiss",
            reviewer=known.reviewer or "unknown",
        )
        teacher.pending |= learn(review, alert, settings.pipeline.shared_root, teacher.folder)

    async def publish(review: Review) -> None:
        delivery = await reviews.send(key=review.alert_id.encode(), value=encode(review))
        await delivery  # on the topic before the page says it is done
        decide(review)

    async def recalibrate() -> None:
        if teacher.pending:
            teacher.pending = False
            try:
                await asyncio.get_running_loop().run_in_executor(None, teacher.rebuild)
            except Exception:  # a bad file in the folder, say: keep trying, keep serving
                teacher.pending = True
                log.exception("gallery rebuild after reviews failed; scorers keep the last build")

    pipeline.app.timer(settings.review.recalibrate_interval_s, name="review.recalibrate")(
        recalibrate
    )

    page = ReviewPage(
        store,
        Access(settings.review),
        publish,
        public_base_url=settings.notify.public_base_url,
        page_size=settings.review.page_size,
        evidence=pipeline.evidence,
    )
    for route in ROUTES:
        pipeline.app.page(route.path, name=f"review.{route.name}")(
            _view(route.method, page.handler(route.name))
        )

    async def read(record: ConsumerRecord[bytes, bytes]) -> None:
        value = record.value or b""
        if record.topic == "reviews":
            review = decode(Review, value)  # a RecordError goes to reject: dead-lettered
            with _applying(record):
                await store.run(decide, review)
            return
        try:
            alert = decode(Alert, value)
        except RecordError:
            return  # the notifier dead-letters an alert that does not parse
        with _applying(record):
            if await store.run(store.add_alert, alert):
                catch_up(alert)

    async def reject(record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """A record that does not parse (``read`` lets no other failure through) goes to
        deadletter, whatever its size."""
        await pipeline.dead_letter_record(
            record.value or b"", reason, record.topic, record.partition, record.offset
        )

    feed = TopicFeed(bootstrap_servers(pipeline.broker), ("alerts", "reviews"), store, read, reject)
    pipeline.app.task(feed.run_forever)
    return feed


@contextmanager
def _applying(record: ConsumerRecord[bytes, bytes]) -> Iterator[None]:
    """Apply a record that parsed: a failure is ``ReadAgain``, never the record's fault."""
    try:
        yield
    except Exception as exc:
        if broker_trouble(exc):
            raise  # read again already
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        raise ReadAgain(f"review store: {where} not applied: {exc!r}") from exc


def _view(method: str, handler: Handler) -> type[faust.web.View]:
    """A Faust view whose one method hands Faust's (aiohttp) request to ``handler``."""

    async def serve(self: faust.web.View, request: Any, **_: Any) -> Any:
        return await handler(request)

    return type(f"Review{method.title()}View", (faust.web.View,), {method.lower(): serve})
