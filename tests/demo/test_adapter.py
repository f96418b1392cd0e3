"""The demo platform crawled as every platform is, by the one ``Crawler`` through ``ApiClient``:
against the real demo platform (and, for failures it never makes, small aiohttp servers that
misbehave on purpose), all on 127.0.0.1. The crawlers are built as ``likeness-monitor up``
builds them (``demo_crawler``), with tiny waits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.demo import DemoCatalogue, serve_platform
from monitor.demo.adapter import demo_crawler
from monitor.demo.catalogue import DEMO_CLIPS
from monitor.errors import SourceError
from monitor.pipeline.broker import free_port
from monitor.records import ClipSeen
from monitor.sources import Source
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler
from monitor.sources.settings import SourcesSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def catalogue(tmp_path: Path) -> DemoCatalogue:
    # The listing needs only the table of clips, not the built media.
    return DemoCatalogue(root=tmp_path, version="listing-only")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[CrawlState]:
    opened = CrawlState(tmp_path / "crawl.sqlite3")
    yield opened
    opened.close()


def crawler(base_url: str, state: CrawlState, **sources: Any) -> Crawler:
    """The demo's crawler as ``up`` builds it, with these ``sources`` settings (tiny backoff)."""
    config = SourcesSettings(**{"backoff_s": 0.01, **sources})
    return demo_crawler(config, state, base_url, interval_s=3.0)


async def crawl(source: Source) -> list[ClipSeen]:
    return [seen async for seen in source.poll()]


async def test_one_pass_yields_every_clip_once_with_its_counts(
    catalogue: DemoCatalogue, state: CrawlState
) -> None:
    async with serve_platform(catalogue, page_size=3, clock=FakeClock()) as base_url:
        seen = await crawl(crawler(base_url, state))

    assert sorted(s.clip_id for s in seen) == sorted(clip.id for clip in DEMO_CLIPS)
    by_id = {s.clip_id: s for s in seen}
    for clip in DEMO_CLIPS:
        observed = by_id[clip.id]
        assert observed.platform == "demo"
        assert observed.key == f"demo:{clip.id}"
        assert observed.url == f"{base_url}/watch/{clip.id}"
        assert observed.media_url == f"{base_url}/media/{clip.media}"
        assert (observed.title, observed.caption, observed.author) == (
            clip.title,
            clip.caption,
            clip.author,
        )
        assert observed.views == clip.base_views
        assert observed.posted_at is not None and observed.posted_at.tzinfo is not None
        assert observed.posted_at < observed.observed_at


async def test_every_pass_yields_every_clip_with_counts_grown_since_the_last(
    catalogue: DemoCatalogue, state: CrawlState
) -> None:
    clock = FakeClock()
    async with serve_platform(catalogue, clock=clock) as base_url:
        source = crawler(base_url, state)
        first = {s.clip_id: s for s in await crawl(source)}
        clock.now += 120.0
        second = {s.clip_id: s for s in await crawl(source)}

    assert set(first) == set(second) == {clip.id for clip in DEMO_CLIPS}
    for clip_id, before in first.items():
        after = second[clip_id]
        assert after.views is not None and before.views is not None
        assert after.views > before.views
        assert after.observed_at >= before.observed_at


async def test_a_rate_limited_crawl_waits_as_told_and_completes(
    catalogue: DemoCatalogue, state: CrawlState
) -> None:
    async with serve_platform(
        catalogue, min_poll_interval_s=0.3, burst=1, page_size=len(DEMO_CLIPS) // 2
    ) as base_url:
        started = time.perf_counter()
        seen = await crawl(crawler(base_url, state))
        took = time.perf_counter() - started

    assert len(seen) == len(DEMO_CLIPS)
    assert 0.9 <= took < 2.5  # one 429 on the second page, Retry-After: 1 (stretched <= 25 %)


async def test_a_wait_longer_than_the_bound_pauses_the_source_keeping_its_cursor(
    catalogue: DemoCatalogue, state: CrawlState
) -> None:
    async with serve_platform(catalogue, min_poll_interval_s=120, burst=1) as base_url:
        source = crawler(base_url, state, max_wait_s=30)
        started = time.perf_counter()
        seen = await crawl(source)
        again = await crawl(source)

    assert time.perf_counter() - started < 1.0
    assert len(seen) == 3  # the first page was yielded before the refusal
    assert again == [], "paused: the next pass does not ask"
    paused = state.paused_until("demo")
    assert paused is not None and "rate limited for 1" in paused[1]
    assert source.report.paused_until == paused[0]
    assert state.feed("demo", "listing").cursor is not None, "the second page is asked next"


Answer = Callable[[], web.Response]


class Scripted:
    """A listing endpoint that gives the scripted answers in turn, the last one forever."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.requests = 0

    async def listing(self, request: web.Request) -> web.Response:
        self.requests += 1
        return self.answers[min(self.requests, len(self.answers)) - 1]()


Serve = Callable[[Scripted], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``serve(scripted)`` starts a server for it and gives its base URL."""
    servers: list[TestServer] = []

    async def start(script: Scripted) -> str:
        app = web.Application()
        app.router.add_get("/api/v1/clips", script.listing)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/"))

    yield start
    for server in servers:
        await server.close()


def page(*items: Mapping[str, object], next_cursor: str | None = None) -> Answer:
    return lambda: web.json_response({"items": list(items), "next_cursor": next_cursor})


def status(code: int, body: str = "") -> Answer:
    return lambda: web.Response(status=code, text=body)


ITEM: dict[str, object] = {
    "id": "a1",
    "url": "/watch/a1",
    "media_url": "/media/a1.mp4",
    "stats": {"views": 5, "likes": 1},
}


async def test_server_errors_are_retried_with_backoff_until_an_answer(
    serve: Serve, state: CrawlState
) -> None:
    script = Scripted([status(503), status(502), page(ITEM)])
    base_url = await serve(script)

    seen = await crawl(crawler(base_url, state, retries=3))

    assert [s.clip_id for s in seen] == ["a1"]
    assert seen[0].media_url == f"{base_url.rstrip('/')}/media/a1.mp4"
    assert script.requests == 3


async def test_server_errors_beyond_the_retries_raise_a_source_error(
    serve: Serve, state: CrawlState
) -> None:
    script = Scripted([status(500, "boom")])
    base_url = await serve(script)

    with pytest.raises(SourceError, match="HTTP 500"):
        await crawl(crawler(base_url, state, retries=2))
    assert script.requests == 3


async def test_a_client_error_is_not_retried(serve: Serve, state: CrawlState) -> None:
    script = Scripted([status(401, "no key")])
    base_url = await serve(script)

    with pytest.raises(SourceError, match="HTTP 401: no key"):
        await crawl(crawler(base_url, state))
    assert script.requests == 1


@pytest.mark.parametrize(
    "body",
    ["<html>maintenance</html>", '{"items": [', '{"clips": []}', '{"items": {"id": 1}}'],
)
async def test_a_page_that_is_not_a_listing_raises_a_source_error(
    serve: Serve, state: CrawlState, body: str
) -> None:
    base_url = await serve(Scripted([lambda: web.Response(text=body)]))

    with pytest.raises(SourceError, match="not a listing page"):
        await crawl(crawler(base_url, state))


async def test_a_malformed_item_is_skipped_and_the_rest_kept(
    serve: Serve, state: CrawlState
) -> None:
    broken = {"url": "/watch/nameless"}
    negative = {**ITEM, "id": "a2", "stats": {"views": -4}}
    base_url = await serve(Scripted([page(broken, negative, {**ITEM, "id": "a3"})]))
    source = crawler(base_url, state)

    seen = await crawl(source)

    assert [s.clip_id for s in seen] == ["a3"]
    assert source.report.skipped == 2


async def test_a_cursor_that_repeats_raises_instead_of_looping(
    serve: Serve, state: CrawlState
) -> None:
    script = Scripted([page(ITEM, next_cursor="same")])
    base_url = await serve(script)

    with pytest.raises(SourceError, match="cursor repeats"):
        await crawl(crawler(base_url, state))
    assert script.requests == 2
    assert state.feed("demo", "listing").cursor is None, "the next pass starts at the top"


async def test_an_unreachable_platform_raises_a_source_error_after_retries(
    state: CrawlState,
) -> None:
    port = free_port()  # nothing listens on it

    with pytest.raises(SourceError, match="ConnectError"):
        await crawl(crawler(f"http://127.0.0.1:{port}", state, retries=1))
