"""A topic feed reads every partition in every worker and, after a restart, reads on from where
it stopped: each review replica sees every alert and decision, and a crawler learns every
flagged clip. With a real broker process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from aiokafka import ConsumerRecord

from monitor.pipeline.app import Pipeline
from monitor.pipeline.broker import EmbeddedBroker, ensure_topics, free_port
from monitor.pipeline.feed import TopicFeed
from monitor.pipeline.harness import produce
from monitor.pipeline.review_role import apply_review
from monitor.pipeline.roles import follow_alerts
from monitor.records import Alert, Review, decode, encode
from monitor.review.decisions import ReviewStore
from monitor.sources.crawl_state import CrawlState
from tests.review.conftest import make_alert

TOPICS = ("alerts", "reviews")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        asyncio.run(ensure_topics(running.bootstrap, dict.fromkeys(TOPICS, 3)))
        yield running


class Replica:
    """One worker's review store, fed by its own ``TopicFeed``."""

    def __init__(self, broker: EmbeddedBroker, state: Path) -> None:
        self.store = ReviewStore(state / "review.sqlite3")
        self.handled = 0
        self.feed = TopicFeed(broker.bootstrap, TOPICS, self.store, self.read)
        self.task: asyncio.Task[None] | None = None

    @staticmethod
    async def ignore(record: ConsumerRecord[bytes, bytes]) -> None:
        pass

    async def read(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.handled += 1
        if record.topic == "alerts":
            self.store.add_alert(decode(Alert, record.value or b""))
        else:
            apply_review(self.store, decode(Review, record.value or b""))

    async def __aenter__(self) -> Replica:
        self.task = asyncio.create_task(self.feed.run())
        await asyncio.wait_for(self.feed.ready.wait(), 30)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def until(condition: object, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_two_replicas_each_see_every_alert_and_decision_and_resume_after_a_restart(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    alerts = [make_alert(f"clip-{i}", "ghostface") for i in range(12)]
    await produce(broker.bootstrap, "alerts", *((a.alert_id.encode(), encode(a)) for a in alerts))
    dismissal = Review(alert_id=alerts[3].alert_id, decision="dismiss", reviewer="ops")
    await produce(broker.bootstrap, "reviews", (dismissal.alert_id.encode(), encode(dismissal)))

    one, two = tmp_path / "one", tmp_path / "two"
    async with Replica(broker, one) as first, Replica(broker, two) as second:
        for replica in (first, second):
            await until(lambda r=replica: len(r.store.alerts()) == 12 and r.handled == 13)
            assert replica.store.get(alerts[3].alert_id).state == "dismissed"  # type: ignore[union-attr]

    confirmation = Review(alert_id=alerts[5].alert_id, decision="confirm", reviewer="ops")
    await produce(
        broker.bootstrap, "reviews", (confirmation.alert_id.encode(), encode(confirmation))
    )
    async with Replica(broker, one) as restarted:
        await until(lambda: restarted.store.get(alerts[5].alert_id).state == "confirmed")  # type: ignore[union-attr]
        await asyncio.sleep(1.0)  # anything read twice would have arrived by now
        assert restarted.handled == 1, "only the record that came while it was down"


async def test_a_crawler_learns_every_flagged_clip_from_the_alerts_topic(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    flagged = [make_alert(f"hot-{i}", "ghostface", platform="youtube") for i in range(5)]
    await produce(
        broker.bootstrap,
        "alerts",
        (b"junk", b"not an alert"),
        *((a.alert_id.encode(), encode(a)) for a in flagged),
    )
    state = CrawlState(tmp_path / "crawl.sqlite3")
    pipeline = cast(Pipeline, SimpleNamespace(broker=broker.url))
    feed = follow_alerts(pipeline, state)
    task = asyncio.create_task(feed.run())
    try:
        wanted = {a.clip.key for a in flagged}
        await until(lambda: wanted <= set(state.flagged_clips()))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_without_a_broker_the_feed_keeps_trying_instead_of_dying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    feed = TopicFeed(nowhere, TOPICS, ReviewStore(tmp_path / "r.sqlite3"), Replica.ignore)
    feed.retry_s = 0.2
    task = asyncio.create_task(feed.run_forever())
    await asyncio.sleep(2.0)
    assert not task.done(), "still running, to read once the broker is back"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sum("reading again" in r.getMessage() for r in caplog.records) >= 2
