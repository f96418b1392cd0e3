"""The Reddit crawler against a local server speaking Reddit's OAuth2 and listing shapes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import SourceError
from monitor.records import ID_MAX
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler
from monitor.sources.queries import Query
from monitor.sources.reddit import RedditPlatform

from .platforms import (
    FakeReddit,
    Sleeps,
    Video,
    catalogue,
    crawl,
    json_answer,
    quick_retry,
    raw_answer,
    serve,
)

QUERY = Query(key="entity:vecna", terms=("Vecna",), hashtags=("StrangerThings",))


def crawler(url: str, tmp_path: Path, sleeps: Sleeps) -> Crawler:
    platform = RedditPlatform(
        *FakeReddit.CLIENT, (QUERY,), base_url=url, auth_url=url, subreddits=(), page_size=3
    )
    return Crawler(platform, CrawlState(tmp_path / "c.db"), retry=quick_retry(sleeps), max_pages=20)


async def test_search_pages_follow_after_to_the_end_with_an_app_only_token(tmp_path: Path) -> None:
    fake = FakeReddit(catalogue(7, prefix="r"))
    async with serve(fake) as url:
        seen = await crawl(crawler(url, tmp_path, Sleeps()))

    assert sorted(c.clip_id for c in seen) == [v.id for v in fake.posts]
    afters = [r["query"].get("after") for r in fake.to("/search")]
    assert afters == [None, "t3_r002", "t3_r005"]
    first = fake.to("/search")[0]
    assert first["query"]["q"] == '"Vecna" OR StrangerThings' and first["query"]["sort"] == "new"
    assert first["headers"]["Authorization"] == "Bearer reddit-token-0"
    assert first["headers"]["User-Agent"].startswith("server:likeness-monitor")
    clip = next(c for c in seen if c.clip_id == "r000")
    assert clip.url == "https://www.reddit.com/r/videos/comments/r000/clip_0/"
    assert clip.media_url == "https://v.redd.it/r000/DASH_720.mp4?source=fallback"
    assert len(fake.issued) == 1


async def test_an_expired_token_is_refreshed_once_and_the_page_asked_again(tmp_path: Path) -> None:
    fake = FakeReddit(catalogue(5, prefix="r"))
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        first = await crawl(source)
        fake.expire_tokens()
        fresh = catalogue(2, prefix="s")
        for post in fresh:
            post.posted_at = datetime.now(UTC)
        fake.posts = fresh + fake.posts  # sorted by new, as asked
        second = await crawl(source)

    assert len(first) == 5 and sorted(c.clip_id for c in second) == ["s000", "s001"]
    assert fake.issued == ["reddit-token-0", "reddit-token-1"]
    assert len(fake.to("/search")) == 2 + 2, "a 401 and its retry; then older posts end the pass"


async def test_a_429_waits_as_retry_after_says(tmp_path: Path) -> None:
    fake = FakeReddit(catalogue(2, prefix="r"))
    fake.fail(
        "/search",
        json_answer({"message": "Too Many Requests", "error": 429}, 429, {"Retry-After": "3"}),
    )
    sleeps = Sleeps()
    async with serve(fake) as url:
        assert len(await crawl(crawler(url, tmp_path, sleeps))) == 2
    assert len(sleeps.waits) == 1 and 3.0 <= sleeps.waits[0] <= 3.75


async def test_when_the_window_is_spent_the_next_request_waits_for_the_reset(
    tmp_path: Path,
) -> None:
    fake = FakeReddit(catalogue(7, prefix="r"))
    fake.remaining = 1.0  # the first answer says 0 left, reset in 42 s
    sleeps = Sleeps()
    async with serve(fake) as url:
        assert len(await crawl(crawler(url, tmp_path, sleeps))) == 7
    assert sleeps.waits and 42.0 <= sleeps.waits[0] <= 42.0 * 1.25


async def test_server_errors_are_retried_then_malformed_json_fails_the_pass(tmp_path: Path) -> None:
    fake = FakeReddit(catalogue(2, prefix="r"))
    fake.fail("/search", raw_answer("<html>502</html>", 502, "text/html"), raw_answer("{nope", 200))
    sleeps = Sleeps()
    async with serve(fake) as url:
        with pytest.raises(SourceError, match="not a Reddit listing"):
            await crawl(crawler(url, tmp_path, sleeps))
        assert len(await crawl(crawler(url, tmp_path, sleeps))) == 2
    assert len(sleeps.waits) == 1


async def test_neither_the_client_secret_nor_tokens_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeReddit(catalogue(2, prefix="r"))
    fake.fail("/search", raw_answer("down", 503))
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        await crawl(source)
        fake.expire_tokens()
        await crawl(source)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "retrying" in text and "token refused" in text
    for secret in (FakeReddit.CLIENT[1], *fake.issued):
        assert secret not in text


async def test_a_post_that_makes_no_valid_record_is_skipped_and_the_rest_of_its_page_kept(
    tmp_path: Path,
) -> None:
    posts = catalogue(6, prefix="r")
    posts.insert(
        1,
        Video(
            id="r" * (ID_MAX + 1), title="an id longer than any record takes", author="a", views=9
        ),
    )
    fake = FakeReddit(posts)
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        seen = await crawl(source)

    assert sorted(c.clip_id for c in seen) == sorted(p.id for p in posts if len(p.id) <= ID_MAX)
    assert source.report.skipped == 1 and source.report.errors == []


async def test_a_post_without_a_valid_time_neither_ends_a_search_nor_fails_its_page(
    tmp_path: Path,
) -> None:
    fake = FakeReddit(catalogue(5, prefix="r"))
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        await crawl(source)  # the next pass searches since this one began
        fresh = catalogue(5, prefix="s")
        for post in fresh:
            post.posted_at = datetime.now(UTC)
        fresh[1].posted_as = "yesterday"  # and every page lists a text post with no time at all
        fake.posts = fresh + fake.posts  # sorted by new, as asked
        second = {c.clip_id: c for c in await crawl(source)}

    assert sorted(second) == [p.id for p in fresh], "the page after the bad post was read too"
    assert second["s001"].posted_at is None and second["s000"].posted_at is not None
    assert len(fake.to("/search")) == 2 + 2, "then the older posts end the second pass"
