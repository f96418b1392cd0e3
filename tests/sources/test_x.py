"""The X crawler against a local server speaking API v2 recent search."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.errors import SourceError
from monitor.records import ID_MAX
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler
from monitor.sources.queries import Query
from monitor.sources.x import XPlatform

from .platforms import (
    FakeX,
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


def crawler(url: str, tmp_path: Path, sleeps: Sleeps, bearer: str = FakeX.BEARER) -> Crawler:
    platform = XPlatform(bearer, (QUERY,), base_url=url, page_size=10)
    return Crawler(platform, CrawlState(tmp_path / "c.db"), retry=quick_retry(sleeps), max_pages=20)


async def test_recent_search_follows_next_token_and_reads_media_from_includes(
    tmp_path: Path,
) -> None:
    posts = catalogue(25, prefix="1790")
    for post in posts:
        post.shares, post.likes = 4, 9
    fake = FakeX(posts)
    async with serve(fake) as url:
        seen = await crawl(crawler(url, tmp_path, Sleeps()))

    assert sorted(c.clip_id for c in seen) == [p.id for p in posts]
    tokens = [r["query"].get("next_token") for r in fake.to("/2/tweets/search/recent")]
    assert tokens == [None, "tok10", "tok20"]
    asked = fake.requests[0]["query"]
    assert asked["query"] == '("Vecna" OR "Henry Creel" OR #StrangerThings) has:videos -is:retweet'
    assert "attachments.media_keys" in asked["expansions"]
    assert "public_metrics" in asked["tweet.fields"] and "variants" in asked["media.fields"]
    clip = next(c for c in seen if c.clip_id == posts[0].id)
    assert clip.media_url == f"https://video.twimg.com/{posts[0].id}/1280.mp4"
    assert (clip.views, clip.likes, clip.shares) == (posts[0].views, 9, 5)
    assert clip.url == f"https://x.com/{posts[0].author}/status/{posts[0].id}"


async def test_a_429_waits_until_x_rate_limit_reset(tmp_path: Path) -> None:
    fake = FakeX(catalogue(3, prefix="1790"))
    fake.fail(
        "/2/tweets/search/recent",
        json_answer(
            {
                "title": "Too Many Requests",
                "detail": "Too Many Requests",
                "type": "about:blank",
                "status": 429,
            },
            429,
            {**fake.limit_headers(reset_in=20), "x-rate-limit-remaining": "0"},
        ),
    )
    sleeps = Sleeps()
    async with serve(fake) as url:
        assert len(await crawl(crawler(url, tmp_path, sleeps))) == 3
    assert len(sleeps.waits) == 1 and 18.0 <= sleeps.waits[0] <= 25.0


async def test_a_reset_beyond_the_longest_wait_pauses_the_source_keeping_its_cursor(
    tmp_path: Path,
) -> None:
    fake = FakeX(catalogue(25, prefix="1790"))
    fake.fail(
        "/2/tweets/search/recent",
        None,
        json_answer(
            {"title": "Too Many Requests", "status": 429}, 429, fake.limit_headers(reset_in=900)
        ),
    )
    async with serve(fake) as url:
        first = await crawl(crawler(url, tmp_path, Sleeps()))
        state = CrawlState(tmp_path / "c.db")
        assert state.paused_until("x") is not None
        assert state.feed("x", "search:entity:vecna").cursor == "tok10"
    assert len(first) == 10


async def test_server_errors_are_retried_and_malformed_json_fails(tmp_path: Path) -> None:
    fake = FakeX(catalogue(3, prefix="1790"))
    fake.fail("/2/tweets/search/recent", raw_answer("oops", 500), raw_answer("[1, 2", 200))
    sleeps = Sleeps()
    async with serve(fake) as url:
        with pytest.raises(SourceError, match="not a recent search response"):
            await crawl(crawler(url, tmp_path, sleeps))
        assert len(await crawl(crawler(url, tmp_path, sleeps))) == 3
    assert len(sleeps.waits) == 1


async def test_a_refused_bearer_token_fails_the_pass_and_is_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeX(catalogue(3, prefix="1790"))
    async with serve(fake) as url:
        with pytest.raises(SourceError, match="HTTP 401"):
            await crawl(crawler(url, tmp_path, Sleeps(), bearer="wrong-bearer-secret"))
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "wrong-bearer-secret" not in text and FakeX.BEARER not in text


async def test_a_post_that_makes_no_valid_record_is_skipped_and_the_rest_of_its_page_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    posts = catalogue(12, prefix="1790")
    posts.insert(
        3,
        Video(
            id="1" * (ID_MAX + 1), title="an id longer than any record takes", author="a", views=9
        ),
    )
    fake = FakeX(posts)
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        seen = await crawl(source)

    assert sorted(c.clip_id for c in seen) == sorted(p.id for p in posts if len(p.id) <= ID_MAX)
    assert source.report.skipped == 1 and source.report.errors == []
    assert len([r for r in caplog.records if "listed items skipped" in r.getMessage()]) == 1


async def test_a_post_whose_time_does_not_parse_is_kept_without_a_posting_time(
    tmp_path: Path,
) -> None:
    posts = catalogue(3, prefix="1790")
    posts[1].posted_as = "last Tuesday"
    fake = FakeX(posts)
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        seen = {c.clip_id: c for c in await crawl(source)}

    assert sorted(seen) == [p.id for p in posts] and source.report.skipped == 0
    assert seen[posts[1].id].posted_at is None
    assert seen[posts[0].id].posted_at is not None
