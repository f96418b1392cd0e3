"""The review role: keeps alerts and decisions in the review store, and serves ``/review``.

Two agents feed the store: one on ``alerts`` (what there is to review) and one on ``reviews``
(what reviewers decided; the topic is the source of truth, the store its view on this host).
Both run in the app's consumer group, so the partitions of each topic are shared among the
workers that run this role: run it in one worker (one replica) for a page that shows every
alert; a second replica shows only the alerts of its partitions.

A dismissal also teaches the gallery (``teach.py``): its evidence joins the negatives and the
gallery is rebuilt on a timer, which the scorers pick up without a restart.

Metrics are counted when a decision first reaches this host's store, once per decision
whichever way it came (the page that made it, or the topic).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from monitor.errors import RecordError
from monitor.pipeline import metrics
from monitor.pipeline.app import Pipeline
from monitor.records import Alert, Review, decode, encode
from monitor.review.access import Access
from monitor.review.page import ROUTES, Handler, ReviewPage
from monitor.review.store import Applied, ReviewStore
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


def install_review(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    store = ReviewStore(settings.pipeline.state_dir / "review.sqlite3")
    reviews = pipeline.topics["reviews"]
    teacher = GalleryTeacher(settings)

    def decide(review: Review) -> None:
        applied = apply_review(store, review)
        if applied.new and applied.alert is not None and teacher.folder is not None:
            teacher.pending |= learn(
                review, applied.alert, settings.pipeline.state_dir, teacher.folder
            )

    async def publish(review: Review) -> None:
        delivery = await reviews.send(key=review.alert_id.encode(), value=encode(review))
        await delivery  # on the topic before the page says it is done
        decide(review)

    async def recalibrate() -> None:
        if teacher.pending:
            teacher.pending = False
            await asyncio.get_running_loop().run_in_executor(None, teacher.rebuild)

    pipeline.app.timer(settings.review.recalibrate_interval_s, name="review.recalibrate")(
        recalibrate
    )

    page = ReviewPage(
        store,
        Access(settings.review),
        publish,
        public_base_url=settings.notify.public_base_url,
        page_size=settings.review.page_size,
    )
    for route in ROUTES:
        pipeline.app.page(route.path, name=f"review.{route.name}")(
            _view(route.method, page.handler(route.name))
        )

    @pipeline.app.agent(pipeline.topics["alerts"], name="review_alerts")
    async def review_alerts(stream: Any) -> None:
        async for event in stream.events():
            try:
                store.add_alert(decode(Alert, event.value))
            except RecordError as exc:
                if "notify" not in pipeline.roles:  # else the notifier dead-letters it
                    await pipeline.dead_letter(event, str(exc))

    @pipeline.app.agent(reviews, name="review")
    async def review(stream: Any) -> None:
        async for event in stream.events():
            try:
                decide(decode(Review, event.value))
            except RecordError as exc:
                await pipeline.dead_letter(event, str(exc))


def _view(method: str, handler: Handler) -> type[faust.web.View]:
    """A Faust view whose one method hands Faust's (aiohttp) request to ``handler``."""

    async def serve(self: faust.web.View, request: Any, **_: Any) -> Any:
        return await handler(request)

    return type(f"Review{method.title()}View", (faust.web.View,), {method.lower(): serve})
