"""Views that read topics whole (the review page, the crawler's flagged clips) miss nothing
after the broker restarts empty: whether the worker's own embedded broker goes down with it
(SIGKILL, SIGTERM), or the broker restarts at the same address under a running review
replica, every alert sent after the restart reaches the review page.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from monitor.pipeline.app import TOPICS, Pipeline
from monitor.pipeline.broker import EmbeddedBroker, ensure_topics, free_port
from monitor.pipeline.harness import produce
from monitor.pipeline.roles import follow_alerts
from monitor.records import Alert, encode
from monitor.sources.crawl_state import CrawlState
from tests.resilience.restarts import REVIEW_TOKEN, Monitor, send, wait_for
from tests.review.conftest import make_alert

_ROW = re.compile(r'id="alert-([0-9a-f]+)"')


def on_page(monitor: Monitor) -> set[str]:
    """The alert ids the review page lists."""
    try:
        page = httpx.get(
            f"{monitor.web}/review",
            headers={"Authorization": f"Bearer {REVIEW_TOKEN}"},
            timeout=10,
        )
    except httpx.HTTPError:
        return set()
    return set(_ROW.findall(page.text)) if page.status_code == 200 else set()


def batch(name: str, count: int) -> list[Alert]:
    return [make_alert(f"{name}-{i}", "ghostface") for i in range(count)]


@pytest.fixture
def review(tmp_path: Path) -> Iterator[Monitor]:
    running = Monitor("review", tmp_path)
    yield running
    running.close()


def test_every_alert_after_a_restart_of_the_embedded_default_reaches_the_page(
    review: Monitor,
) -> None:
    shown: set[str] = set()
    for name, end in (
        ("first", None),
        ("after a kill", review.kill),
        ("after a stop", review.stop),
    ):
        if end is not None:
            end()  # the worker, and the embedded broker with it
        alerts = batch(name.replace(" ", "-"), 10)
        send(review.start(), alerts)  # each start: a new embedded broker, empty
        shown.update(a.alert_id for a in alerts)
        wait_for(
            lambda: shown <= on_page(review),
            60,
            f"the 10 alerts sent {name} on the page",
            counts=lambda: f"{len(shown & on_page(review))} of {len(shown)} shown",
        )
    assert len(on_page(review)) == 30


@pytest.fixture
def fixed_port_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    yield broker
    broker.stop()


def restart(broker: EmbeddedBroker) -> None:
    broker.stop()
    broker.start()  # the same address, a new and empty broker
    asyncio.run(ensure_topics(broker.bootstrap, dict.fromkeys(TOPICS, 2)))


def test_a_running_review_replica_reads_a_restarted_broker_from_the_start(
    fixed_port_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    broker = fixed_port_broker
    asyncio.run(ensure_topics(broker.bootstrap, dict.fromkeys(TOPICS, 2)))
    replica = Monitor("review", tmp_path, LIKENESS_MONITOR_PIPELINE__BROKER_URL=broker.url)
    try:
        replica.start()
        before, after = batch("before", 10), batch("after", 10)
        send(broker.bootstrap, before)
        wait_for(lambda: len(on_page(replica)) == 10, 60, "10 alerts on the page", replica)
        restart(broker)
        send(broker.bootstrap, after)
        wanted = {a.alert_id for a in [*before, *after]}
        wait_for(
            lambda: on_page(replica) == wanted,
            120,
            "the 10 alerts sent after the broker restarted on the page too",
            counts=lambda: f"{len(on_page(replica) & wanted)} of 20 shown",
        )
        assert replica.worker.alive()
    finally:
        replica.close()


async def test_the_crawlers_flagged_clips_feed_reads_a_new_broker_from_the_start(
    tmp_path: Path,
) -> None:
    state = CrawlState(tmp_path / "crawl.sqlite3")

    async def follow(broker: EmbeddedBroker, alerts: list[Alert]) -> None:
        await ensure_topics(broker.bootstrap, {"alerts": 1})
        await produce(broker.bootstrap, "alerts", *((a.key.encode(), encode(a)) for a in alerts))
        feed = follow_alerts(cast(Pipeline, SimpleNamespace(broker=broker.url)), state)
        task = asyncio.create_task(feed.run())
        try:
            deadline = asyncio.get_running_loop().time() + 30
            wanted = {a.clip.key for a in alerts}
            while not wanted <= (flagged := set(state.flagged_clips())):
                missing = len(wanted - flagged)
                assert asyncio.get_running_loop().time() < deadline, (
                    f"{missing} of {len(wanted)} missing"
                )
                await asyncio.sleep(0.2)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    for name, count in (("first", 8), ("second", 5)):  # fewer after: all behind the old position
        async with EmbeddedBroker() as broker:
            await follow(broker, batch(name, count))
    state.close()
