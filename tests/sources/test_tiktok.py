"""The TikTok crawler against a local server speaking the Research API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.errors import SourceError
from monitor.records import URL_MAX
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler
from monitor.sources.queries import Query
from monitor.sources.tiktok import TikTokPlatform

from .platforms import (
    FakeTikTok,
    Sleeps,
    Video,
    catalogue,
    crawl,
    quick_retry,
    raw_answer,
    serve,
    tiktok_error,
)

QUERY = Query(key="entity:vecna", terms=("Vecna",), hashtags=("StrangerThings",))


def crawler(url: str, tmp_path: Path, sleeps: Sleeps, daily: int = 1000) -> Crawler:
    platform = TikTokPlatform(
        *FakeTikTok.KEY, (QUERY,), base_url=url, region_codes=(), page_size=4, daily_requests=daily
    )
    return Crawler(platform, CrawlState(tmp_path / "c.db"), retry=quick_retry(sleeps), max_pages=20)


async def test_a_query_follows_cursor_and_search_id_to_the_end(tmp_path: Path) -> None:
    fake = FakeTikTok(catalogue(10, prefix="7"))
    async with serve(fake) as url:
        seen = await crawl(crawler(url, tmp_path, Sleeps()))

    assert sorted(c.clip_id for c in seen) == [v.id for v in fake.videos]
    assert [(b.get("cursor"), b.get("search_id")) for b in fake.bodies] == [
        (None, None),
        (4, "7414696757969294378"),
        (8, "7414696757969294378"),
    ]
    first = fake.bodies[0]
    assert first["query"]["or"][0] == {
        "field_name": "keyword",
        "operation": "EQ",
        "field_values": ["Vecna"],
    }
    assert first["query"]["or"][1]["field_values"] == ["strangerthings"]
    assert len(first["start_date"]) == 8 and first["max_count"] == 4
    assert "view_count" in fake.to("/v2/research/video/query/")[0]["query"]["fields"]
    clip = next(c for c in seen if c.clip_id == "7000")
    assert clip.url == "https://www.tiktok.com/@author0/video/7000"
    assert clip.views == 10_000 and clip.media_url is None


async def test_an_invalid_access_token_is_renewed_and_the_query_asked_again(tmp_path: Path) -> None:
    fake = FakeTikTok(catalogue(3, prefix="7"))
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        await crawl(source)
        fake.valid.clear()
        fake.videos += catalogue(1, prefix="8")
        again = await crawl(source)
    assert [c.clip_id for c in again] == ["8000"]
    assert fake.issued == ["clt.fake0", "clt.fake1"]


async def test_rate_limit_exceeded_is_waited_out_and_server_errors_retried(tmp_path: Path) -> None:
    fake = FakeTikTok(catalogue(3, prefix="7"))
    fake.fail(
        "/v2/research/video/query/",
        tiktok_error(429, "rate_limit_exceeded", "The API rate limit was exceeded."),
        tiktok_error(500, "internal_error", "Something went wrong."),
    )
    sleeps = Sleeps()
    async with serve(fake) as url:
        assert len(await crawl(crawler(url, tmp_path, sleeps))) == 3
    assert len(sleeps.waits) == 2


async def test_a_malformed_answer_fails_the_pass(tmp_path: Path) -> None:
    fake = FakeTikTok(catalogue(3, prefix="7"))
    fake.fail("/v2/research/video/query/", raw_answer('{"data": {"videos": [', 200))
    async with serve(fake) as url:
        with pytest.raises(SourceError, match="not a video query response"):
            await crawl(crawler(url, tmp_path, Sleeps()))


async def test_the_daily_request_allowance_is_counted_and_the_cursor_kept(tmp_path: Path) -> None:
    fake = FakeTikTok(catalogue(10, prefix="7"))
    async with serve(fake) as url:
        seen = await crawl(crawler(url, tmp_path, Sleeps(), daily=2))
    state = CrawlState(tmp_path / "c.db")
    assert len(seen) == 8 and len(fake.bodies) == 2
    paused = state.paused_until("tiktok")
    assert paused is not None and (paused[0].hour, paused[0].minute) == (0, 0)
    cursor = state.feed("tiktok", "search:entity:vecna").cursor
    assert cursor is not None and json.loads(cursor)["cursor"] == 8


async def test_a_video_that_makes_no_valid_record_is_skipped_and_the_rest_of_its_page_kept(
    tmp_path: Path,
) -> None:
    videos = catalogue(7, prefix="7")
    # A username over URL_MAX characters makes the clip's URL longer than any record takes.
    videos.insert(
        1,
        Video(
            id="7999",
            title="a URL longer than any record takes",
            author="u" * (URL_MAX + 1),
            views=9,
        ),
    )
    fake = FakeTikTok(videos)
    async with serve(fake) as url:
        source = crawler(url, tmp_path, Sleeps())
        seen = await crawl(source)

    assert sorted(c.clip_id for c in seen) == sorted(v.id for v in videos if v.id != "7999")
    assert source.report.skipped == 1 and source.report.errors == []
    assert len(fake.bodies) == 2, "the pages after the bad item were read too"
