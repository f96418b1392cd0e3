"""The review role in the Faust worker: its pages are served by the worker's own web server, and
its store is fed every alert and decision that parses, even through a moment of SQLite trouble."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiokafka import ConsumerRecord
from pydantic import SecretStr

from monitor.config import PipelineSettings, ReviewSettings, Settings
from monitor.errors import ReadAgain
from monitor.pipeline.app import TOPICS, Pipeline
from monitor.pipeline.feed import TopicFeed
from monitor.pipeline.poison import broker_trouble
from monitor.pipeline.review_role import install_review
from monitor.pipeline.roles import create_pipeline
from monitor.records import Review, encode
from monitor.review.decisions import ReviewStore
from tests.review.conftest import TOKEN, make_alert


@pytest.fixture
async def worker_web(tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(
        pipeline=PipelineSettings(state_dir=tmp_path), review=ReviewSettings(token=SecretStr(TOKEN))
    )
    # No broker is reached: the app is built, and only its web server is run.
    pipeline = create_pipeline(settings, "kafka://127.0.0.1:9", roles=("review",))
    assert "reviews" in TOPICS and not pipeline.app.agents, "read by a feed of its own, not agents"
    runner = web.AppRunner(pipeline.app.web.web_app)  # type: ignore[attr-defined]  # aiohttp driver
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()
    pipeline.state.close()


async def test_a_worker_running_the_review_role_serves_the_review_page(worker_web: str) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=worker_web) as client:
        page = await client.get("/review", headers=bearer)
        assert page.status_code == 200 and "Alerts to review" in page.text
        assert "review_csrf=" in page.headers["set-cookie"]
        assert (await client.get("/review")).status_code == 401
        assert (await client.get("/review/export.json", headers=bearer)).json() == []
        assert (await client.get("/review/export.csv", headers=bearer)).text.startswith("alert_id,")
        refused = await client.post(f"/review/{'0' * 20}/confirm", headers=bearer)
        assert refused.status_code == 403


def test_a_worker_without_the_review_role_has_no_review_page(tmp_path: Path) -> None:
    settings = Settings(pipeline=PipelineSettings(state_dir=tmp_path))
    pipeline = create_pipeline(settings, "kafka://127.0.0.1:9", roles=("decide",))
    paths = {route.resource.canonical for route in pipeline.app.web.web_app.router.routes()}  # type: ignore[attr-defined]
    assert "/healthz" in paths and "/review" not in paths
    pipeline.state.close()


class Fed:
    """The review role's feed, handed records by hand (no broker), and what it dead-lettered."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.dead_letters: list[tuple[str, str]] = []
        self.feed: TopicFeed = install_review(pipeline)
        self.offset = 0

        async def dead_letter(
            raw: bytes, reason: str, topic: str, partition: int, offset: int
        ) -> None:
            self.dead_letters.append((topic, reason))

        pipeline.dead_letter_record = dead_letter  # type: ignore[method-assign]

    async def hand(self, topic: str, value: bytes) -> None:
        """One record, as the feed hands it on: to the role, or, failing, to ``reject``."""
        self.offset += 1
        record = ConsumerRecord(topic, 0, self.offset, 0, 0, None, value, None, 0, len(value), ())
        await self.feed._handle(record)

    def stored(self, alert_id: str) -> bool:
        """Whether the role's store (read through a connection of its own) has the alert."""
        store = ReviewStore(self.pipeline.settings.pipeline.state_dir / "review.sqlite3")
        try:
            return store.get(alert_id) is not None
        finally:
            store.close()


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Fed]:
    settings = Settings(pipeline=PipelineSettings(state_dir=tmp_path))
    pipeline = create_pipeline(settings, "kafka://127.0.0.1:9", roles=())
    yield Fed(pipeline)
    pipeline.state.close()


async def test_an_alert_the_store_cannot_take_now_is_read_again_not_dead_lettered(
    fed: Fed, monkeypatch: pytest.MonkeyPatch
) -> None:
    alert = make_alert("locked", "ghostface")

    def locked(self: ReviewStore, alert: object) -> bool:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(ReviewStore, "add_alert", locked)
    with pytest.raises(ReadAgain) as stopped:
        await fed.hand("alerts", encode(alert))
    assert broker_trouble(stopped.value), "the feed stops and reads the record again"
    assert fed.dead_letters == []

    monkeypatch.undo()  # the lock is gone: the record read again lands
    await fed.hand("alerts", encode(alert))
    assert fed.stored(alert.alert_id)
    assert fed.dead_letters == []


async def test_a_decision_the_store_cannot_take_now_is_read_again_not_dead_lettered(
    fed: Fed, monkeypatch: pytest.MonkeyPatch
) -> None:
    review = Review(
        alert_id=make_alert("busy", "ghostface").alert_id, decision="confirm", reviewer="r"
    )

    def busy(self: ReviewStore, review: Review) -> object:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(ReviewStore, "apply", busy)
    with pytest.raises(ReadAgain):
        await fed.hand("reviews", encode(review))
    assert fed.dead_letters == []


async def test_only_a_record_that_does_not_parse_is_dead_lettered(fed: Fed) -> None:
    await fed.hand("reviews", b"not a decision")
    await fed.hand("alerts", b"not an alert")  # the notifier dead-letters those
    assert [topic for topic, _ in fed.dead_letters] == ["reviews"]
    assert fed.dead_letters[0][1].startswith("Review: ")
