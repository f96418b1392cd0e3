"""A crawl pass reports its source on /metrics: how much of the day's quota is spent, whether
the source is paused, and how each pass ended."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from monitor import metrics
from monitor.pipeline.roles import crawl_pass
from monitor.sources.crawl_state import CrawlState
from tests.sources.platforms import FakeYouTube, Sleeps, Video, catalogue, serve
from tests.sources.test_youtube import crawler


class Topic:
    """Stands in for a Faust topic: ``send`` returns a delivery already acknowledged."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def sample(name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_pass_that_spends_the_quota_reports_the_share_spent_and_the_pause(
    tmp_path: Path,
) -> None:
    fake = FakeYouTube(catalogue(12))
    topic = Topic()
    paused_before = sample("likeness_crawl_passes_total", source="youtube", outcome="paused")
    async with serve(fake) as url:
        # 100 units per search page and 1 per videos page: two pages fit in 205 units.
        source = crawler(url, CrawlState(tmp_path / "crawl.sqlite3"), Sleeps(), daily_quota=205)
        await crawl_pass(source, topic)()

    assert len(topic.sent) == 8
    assert sample("likeness_source_quota_used_ratio", source="youtube") == pytest.approx(202 / 205)
    assert sample("likeness_source_paused", source="youtube") == 1
    assert (
        sample("likeness_crawl_passes_total", source="youtube", outcome="paused")
        == paused_before + 1
    )


async def test_a_clean_pass_is_counted_ok_and_not_paused(tmp_path: Path) -> None:
    fake = FakeYouTube(catalogue(3))
    ok_before = sample("likeness_crawl_passes_total", source="youtube", outcome="ok")
    async with serve(fake) as url:
        source: Any = crawler(url, CrawlState(tmp_path / "crawl.sqlite3"), Sleeps())
        await crawl_pass(source, Topic())()
    assert sample("likeness_crawl_passes_total", source="youtube", outcome="ok") == ok_before + 1
    assert sample("likeness_source_paused", source="youtube") == 0


async def test_items_that_make_no_valid_record_are_counted_and_the_rest_sent(
    tmp_path: Path,
) -> None:
    videos = catalogue(3)
    videos.insert(1, Video(id="v" * 600, title="an id over 512 characters", author="a", views=9))
    topic = Topic()
    skipped_before = sample("likeness_crawl_items_skipped_total", source="youtube")
    async with serve(FakeYouTube(videos)) as url:
        source: Any = crawler(url, CrawlState(tmp_path / "crawl.sqlite3"), Sleeps())
        await crawl_pass(source, topic)()
    assert len(topic.sent) == 3
    assert sample("likeness_crawl_items_skipped_total", source="youtube") == skipped_before + 1
