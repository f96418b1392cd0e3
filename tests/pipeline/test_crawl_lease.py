"""Crawl replicas that share a crawl state (PostgreSQL, or one SQLite file) crawl a source one
at a time: the holder of its lease crawls, the others stand by, and a standby takes over when
the holder stops renewing it. A holder that loses its lease mid-pass stops before its next
page, whose cursor stays for the new holder."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor import metrics
from monitor.pipeline import roles
from monitor.pipeline.roles import crawl_pass
from monitor.sources.crawl_state import CrawlState
from monitor.storage import Database
from tests.pipeline.test_crawl_metrics import Topic
from tests.sources.platforms import FakeYouTube, Sleeps, catalogue, serve
from tests.sources.test_youtube import crawler

StoreAt = Callable[[str], Path | Database]


def standbys() -> float:
    labels = {"source": "youtube", "outcome": "standby"}
    return metrics.registry.get_sample_value("likeness_crawl_passes_total", labels) or 0.0


async def test_the_lease_holder_crawls_a_standby_waits_and_takes_over_when_it_expires(
    state_at: StoreAt, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeYouTube(catalogue(3))
    first, second = Topic(), Topic()
    before = standbys()
    async with serve(fake) as url:
        pod_a: Any = crawler(url, CrawlState(state_at("crawl")), Sleeps())
        pod_b: Any = crawler(url, CrawlState(state_at("crawl")), Sleeps())
        monkeypatch.setattr(roles, "CRAWL_HOLDER", "pod-a")
        await crawl_pass(pod_a, first, lease_s=0.5)()
        monkeypatch.setattr(roles, "CRAWL_HOLDER", "pod-b")
        await crawl_pass(pod_b, second, lease_s=0.5)()
        assert (len(first.sent), second.sent, standbys()) == (3, [], before + 1)
        await asyncio.sleep(0.6)  # pod-a renews no more: it died
        asked = len(fake.requests)
        await crawl_pass(pod_b, second, lease_s=0.5)()
        assert len(fake.requests) > asked, "the standby crawls once the lease expired"
    assert standbys() == before + 1
    assert pod_b.state.lease_holder("youtube", now=time.time()) == "pod-b"


async def test_a_holder_that_loses_its_lease_mid_pass_sends_no_more_pages(
    state_at: StoreAt, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeYouTube(catalogue(9))  # pages of four: 4, 4, 1
    taker = CrawlState(state_at("crawl"))

    class TakenDuringTheFirstPage(Topic):
        async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
            if len(self.sent) == 3:  # pod-a stalls past its lease (a long pause, a partition)
                later = time.time() + 120  # its lease expired: pod-b takes it
                assert taker.hold_lease("youtube", "pod-b", now=later, ttl_s=60)
            return await super().send(key=key, value=value)

    by_a, by_b = TakenDuringTheFirstPage(), Topic()
    async with serve(fake) as url:
        monkeypatch.setattr(roles, "CRAWL_HOLDER", "pod-a")
        pod_a: Any = crawler(url, CrawlState(state_at("crawl")), Sleeps())
        await crawl_pass(pod_a, by_a, lease_s=60)()
        assert len(by_a.sent) == 4, "the first page only: the second is not sent"
        monkeypatch.setattr(roles, "CRAWL_HOLDER", "pod-b")
        pod_b: Any = crawler(url, taker, Sleeps())
        await crawl_pass(pod_b, by_b, lease_s=60)()
    assert sorted(by_a.sent + by_b.sent) == sorted({*by_a.sent, *by_b.sent})
    assert len(by_a.sent + by_b.sent) == 9, "pod-b resumes at the page pod-a did not send"
