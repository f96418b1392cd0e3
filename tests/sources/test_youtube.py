"""The YouTube crawler against a local server that answers as the Data API v3 documents."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import SourceError
from monitor.records import ID_MAX, ClipSeen
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler
from monitor.sources.queries import Query
from monitor.sources.youtube import PACIFIC, YouTubePlatform

from .platforms import (
    QUOTA_EXCEEDED,
    FakeYouTube,
    Sleeps,
    Video,
    catalogue,
    crawl,
    json_answer,
    quick_retry,
    raw_answer,
    serve,
)

QUERY = Query(key="entity:vecna", terms=("Vecna", "Henry Creel"), hashtags=("StrangerThings",))


def crawler(
    base_url: str,
    state: CrawlState,
    sleeps: Sleeps,
    *,
    regions: tuple[str, ...] = (),
    queries: tuple[Query, ...] = (QUERY,),
    daily_quota: int = 10_000,
    **options: object,
) -> Crawler:
    platform = YouTubePlatform(
        FakeYouTube.KEY,
        queries,
        base_url=f"{base_url}/youtube/v3",
        region_codes=regions,
        daily_quota=daily_quota,
        page_size=4,
    )
    return Crawler(platform, state, retry=quick_retry(sleeps), max_pages=20, **options)  # type: ignore[arg-type]


@pytest.fixture
def state(tmp_path: Path) -> CrawlState:
    return CrawlState(tmp_path / "crawl.sqlite3")


async def test_a_search_is_followed_to_its_last_page_with_statistics_for_every_video(
    state: CrawlState,
) -> None:
    fake = FakeYouTube(catalogue(10))
    sleeps = Sleeps()
    async with serve(fake) as url:
        seen = await crawl(crawler(url, state, sleeps))

    assert sorted(c.clip_id for c in seen) == [v.id for v in fake.found]
    assert [r["query"].get("pageToken") for r in fake.to("/youtube/v3/search")] == [
        None,
        "p4",
        "p8",
    ]
    first = next(c for c in seen if c.clip_id == "v000")
    assert (first.platform, first.views, first.author) == ("youtube", 10_000, "author0")
    assert first.url == "https://www.youtube.com/watch?v=v000"
    assert first.media_url == "https://i.ytimg.com/vi/v000/hqdefault.jpg"
    search = fake.to("/youtube/v3/search")[0]["query"]
    assert search["q"] == '"Vecna"|"Henry Creel"|#StrangerThings'
    assert (search["type"], search["order"], search["part"]) == ("video", "date", "snippet")
    assert sleeps.waits == []


async def test_within_a_page_the_fastest_spreading_clip_comes_first(state: CrawlState) -> None:
    videos = catalogue(4)
    videos.reverse()  # the platform lists the slowest first
    async with serve(FakeYouTube(videos)) as url:
        seen = await crawl(crawler(url, state, Sleeps()))

    views = [c.views or 0 for c in seen]
    assert views == sorted(views, reverse=True)


async def test_a_second_pass_emits_nothing_already_discovered_and_asks_conditionally(
    state: CrawlState,
) -> None:
    fake = FakeYouTube(catalogue(6))
    async with serve(fake) as url:
        source = crawler(url, state, Sleeps())
        assert len(await crawl(source)) == 6
        before = len(fake.requests)
        assert await crawl(source) == []

    again = fake.requests[before:]
    assert len(again) == 1, "an unchanged first page ends the pass"
    assert again[0]["headers"].get("If-None-Match") == '"youtube#searchListResponse-6-0"'
    assert "publishedAfter" in again[0]["query"]


async def test_a_429_is_waited_out_as_retry_after_says(state: CrawlState) -> None:
    fake = FakeYouTube(catalogue(3))
    fake.fail("/youtube/v3/search", json_answer({}, status=429, headers={"Retry-After": "7"}))
    sleeps = Sleeps()
    async with serve(fake) as url:
        seen = await crawl(crawler(url, state, sleeps))

    assert len(seen) == 3
    assert len(sleeps.waits) == 1 and 7.0 <= sleeps.waits[0] <= 7.0 * 1.25


async def test_server_errors_are_retried_with_growing_backoff(state: CrawlState) -> None:
    fake = FakeYouTube(catalogue(3))
    fake.fail("/youtube/v3/videos", raw_answer("oops", 500), raw_answer("busy", 503))
    sleeps = Sleeps()
    async with serve(fake) as url:
        seen = await crawl(crawler(url, state, sleeps))

    assert len(seen) == 3
    assert len(sleeps.waits) == 2
    assert 0.25 <= sleeps.waits[0] <= 0.5 and 0.5 <= sleeps.waits[1] <= 1.0


async def test_a_malformed_page_fails_the_pass_and_the_next_pass_resumes_there(
    state: CrawlState,
) -> None:
    fake = FakeYouTube(catalogue(8))
    fake.fail("/youtube/v3/search", None, raw_answer('{"items": [', 200))
    first: list[ClipSeen] = []
    async with serve(fake) as url:
        with pytest.raises(SourceError, match=r"not a search\.list response"):
            async for clip in crawler(url, state, Sleeps()).poll():
                first.append(clip)
        second = await crawl(crawler(url, state, Sleeps()))

    assert len(first) == 4
    assert sorted(c.clip_id for c in first + second) == [v.id for v in fake.found]
    tokens = [r["query"].get("pageToken") for r in fake.to("/youtube/v3/search")]
    assert tokens == [None, "p4", "p4"], "the failed page is asked for again, not skipped"


async def test_quota_exceeded_pauses_the_source_until_midnight_pacific(state: CrawlState) -> None:
    fake = FakeYouTube(catalogue(3))
    fake.fail("/youtube/v3/search", QUOTA_EXCEEDED)
    async with serve(fake) as url:
        source = crawler(url, state, Sleeps())
        assert await crawl(source) == []
        paused = state.paused_until("youtube")
        assert paused is not None
        until = paused[0].astimezone(PACIFIC)
        assert (until.hour, until.minute) == (0, 0) and until > datetime.now(UTC)
        assert "quotaExceeded" in paused[1]
        asked = len(fake.requests)
        assert await crawl(crawler(url, state, Sleeps())) == []
    assert len(fake.requests) == asked, "a paused source sends nothing"


async def test_the_crawler_counts_quota_units_and_stops_before_the_platform_refuses(
    state: CrawlState,
) -> None:
    fake = FakeYouTube(catalogue(12))
    fake.quota_left = 10_000
    async with serve(fake) as url:
        # 100 per search page and 1 per videos page: two pages fit in 205 units, not three.
        seen = await crawl(crawler(url, state, Sleeps(), daily_quota=205))

    assert len(seen) == 8
    assert len(fake.to("/youtube/v3/search")) == 2
    assert state.paused_until("youtube") is not None
    assert fake.quota_left == 10_000 - 202


async def test_the_most_popular_chart_is_read_for_clips_that_name_nothing(
    state: CrawlState,
) -> None:
    fake = FakeYouTube([], popular=catalogue(5, prefix="pop"))
    async with serve(fake) as url:
        seen = await crawl(crawler(url, state, Sleeps(), regions=("GB",), queries=()))

    assert sorted(c.clip_id for c in seen) == [v.id for v in fake.popular]
    charts = fake.to("/youtube/v3/videos")
    assert {r["query"]["chart"] for r in charts} == {"mostPopular"}
    assert {r["query"]["regionCode"] for r in charts} == {"GB"}


async def test_the_api_key_travels_in_a_header_and_never_reaches_a_log(
    state: CrawlState, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeYouTube(catalogue(3))
    fake.fail("/youtube/v3/search", raw_answer("down", 502))
    caplog.set_level(logging.DEBUG)
    async with serve(fake) as url:
        await crawl(crawler(url, state, Sleeps()))

    assert fake.requests and all(FakeYouTube.KEY not in str(r["query"]) for r in fake.requests)
    assert all(r["headers"].get("X-Goog-Api-Key") == FakeYouTube.KEY for r in fake.requests)
    assert any("retrying" in record.getMessage() for record in caplog.records)
    assert all(FakeYouTube.KEY not in record.getMessage() for record in caplog.records)


async def test_a_video_that_makes_no_valid_record_is_skipped_and_the_rest_of_its_page_kept(
    state: CrawlState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    found, popular = catalogue(6), catalogue(3, prefix="pop")
    found.insert(
        2,
        Video(
            id="v" * (ID_MAX + 1), title="an id longer than any record takes", author="a", views=9
        ),
    )
    popular.insert(1, Video(id="p" * (ID_MAX + 1), title="and on the chart", author="a", views=9))
    fake = FakeYouTube(found, popular=popular)
    async with serve(fake) as url:
        source = crawler(url, state, Sleeps(), regions=("US",))
        seen = await crawl(source)

    good = [v.id for v in [*found, *popular] if len(v.id) <= ID_MAX]
    assert sorted(c.clip_id for c in seen) == sorted(good)
    assert source.report.skipped == 2 and source.report.errors == []
    assert state.feed("youtube", "search:entity:vecna").cursor is None, "every page was read"
    skips = [r for r in caplog.records if "listed items skipped" in r.getMessage()]
    assert len(skips) == 2, "one line per page with bad items"
    assert "v" * (ID_MAX + 1) not in skips[0].getMessage(), (
        "the reason names the field, not its value"
    )


async def test_a_video_whose_time_does_not_parse_is_kept_without_a_posting_time(
    state: CrawlState,
) -> None:
    videos = catalogue(3)
    videos[1].posted_as = "last Tuesday"
    fake = FakeYouTube(videos)
    async with serve(fake) as url:
        source = crawler(url, state, Sleeps())
        seen = {c.clip_id: c for c in await crawl(source)}

    assert sorted(seen) == [v.id for v in videos] and source.report.skipped == 0
    assert seen[videos[1].id].posted_at is None
    assert seen[videos[0].id].posted_at is not None


async def test_the_synthetic_media_label_is_asked_for_and_carried_on_the_observation(
    state: CrawlState,
) -> None:
    found = catalogue(3)
    found[0].synthetic, found[1].synthetic = True, False  # found[2]: the uploader never said
    popular = catalogue(2, prefix="pop")
    popular[0].synthetic = True
    fake = FakeYouTube(found, popular=popular)
    async with serve(fake) as url:
        seen = await crawl(crawler(url, state, Sleeps(), regions=("GB",)))

    label = {c.clip_id: c.platform_synthetic for c in seen}
    assert label == {"v000": True, "v001": False, "v002": None, "pop000": True, "pop001": None}
    videos = fake.to("/youtube/v3/videos")
    assert videos and {r["query"]["part"] for r in videos} == {"snippet,statistics,status"}
