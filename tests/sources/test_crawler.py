"""The crawl loop's promises: no page lost and no discovery repeated across a restart, and
spreading or flagged clips looked at again until they cool down; the same with the crawl
state in a SQLite file and in PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from monitor.records import ClipSeen
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler, SpreadPolicy
from monitor.sources.queries import Query
from monitor.sources.youtube import YouTubePlatform
from monitor.storage import Database

from .platforms import FakeYouTube, Sleeps, catalogue, quick_retry, serve


class Crash(Exception):
    pass


StoreAt = Callable[[str], Path | Database]


def popular_crawler(base_url: str, path: Path | Database, **options: object) -> Crawler:
    platform = YouTubePlatform(
        FakeYouTube.KEY, (), base_url=f"{base_url}/youtube/v3", region_codes=("US",), page_size=3
    )
    return Crawler(
        platform,
        CrawlState(path),
        retry=quick_retry(Sleeps()),
        max_pages=20,
        **options,  # type: ignore[arg-type]
    )


async def test_a_crawler_restarted_mid_pass_neither_loses_a_page_nor_emits_a_clip_twice(
    state_at: StoreAt,
) -> None:
    fake = FakeYouTube([], popular=catalogue(10, prefix="pop"))
    sent: list[str] = []

    async def dies_on_the_third_batch(batch: Sequence[ClipSeen]) -> None:
        if len(sent) >= 6:
            raise Crash("the worker died before the broker acknowledged")
        sent.extend(clip.clip_id for clip in batch)

    async def emit(batch: Sequence[ClipSeen]) -> None:
        sent.extend(clip.clip_id for clip in batch)

    async with serve(fake) as url:
        with pytest.raises(Crash):
            await popular_crawler(url, state_at("crawl")).run(dies_on_the_third_batch)
        asked_before = len(fake.requests)
        # A new process: a new state object on the same file.
        await popular_crawler(url, state_at("crawl")).run(emit)

    assert sorted(sent) == [v.id for v in fake.popular]
    assert len(sent) == len(set(sent))
    resumed = [r["query"].get("pageToken") for r in fake.requests[asked_before:]]
    assert resumed == ["p6", "p9"], "the restarted crawler resumes at the unsent page"


async def test_a_clip_spreading_fast_is_observed_again_until_it_cools_down(
    state_at: StoreAt,
) -> None:
    videos = catalogue(4)  # two hours old: v000 at 2,000 views an hour, v001 1,500, ...
    fake = FakeYouTube(videos)
    state = CrawlState(state_at("crawl"))
    spread = SpreadPolicy(hot_views_per_hour=1800, cool_views_per_hour=100, interval_s=0.0)
    everything = Query(key="all", terms=("anything",), hashtags=())
    platform = YouTubePlatform(FakeYouTube.KEY, (everything,), base_url="", region_codes=())

    async with serve(fake) as url:
        platform.base_url = f"{url}/youtube/v3"

        async def one_pass() -> list[ClipSeen]:
            source = Crawler(platform, state, retry=quick_retry(Sleeps()), spread=spread)
            return [clip async for clip in source.poll()]

        first = await one_pass()
        fake.found = []  # the search no longer lists them: only a lookup by id finds them
        videos[0].views += 5_000
        second = await one_pass()
        third = await one_pass()  # v000 did not grow since: it has cooled down
        fourth = await one_pass()

    assert len(first) == 4
    assert [c.clip_id for c in second] == ["v000"]
    assert second[0].views == 9_000
    assert [c.clip_id for c in third] == ["v000"] and third[0].views == 9_000
    assert fourth == []
    lookups = [r["query"]["id"] for r in fake.to("/youtube/v3/videos")][1:]
    assert lookups == ["v000", "v000"]


async def test_a_flagged_clip_is_observed_again_though_it_spreads_slowly(
    state_at: StoreAt,
) -> None:
    fake = FakeYouTube([], popular=catalogue(4, prefix="pop"))
    flagged = {"youtube:pop003"}
    spread = SpreadPolicy(hot_views_per_hour=10_000, interval_s=0.0)  # none is hot
    async with serve(fake) as url:
        crawler = popular_crawler(url, state_at("crawl"), spread=spread, flagged=lambda: flagged)
        first = [c async for c in crawler.poll()]
        fake.popular = []
        crawler = popular_crawler(url, state_at("crawl"), spread=spread, flagged=lambda: flagged)
        second = [c async for c in crawler.poll()]

    assert len(first) == 4
    assert [c.clip_id for c in second] == ["pop003"]
