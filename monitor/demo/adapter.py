"""The demo platform (``monitor/demo/platform.py``) as a ``Platform``, crawled like every other.

It is one more adapter on ``ApiClient``, driven by the one ``Crawler``: the crawler follows
the listing's cursor, waits out the ``429`` a fast crawl earns (a wait longer than the
configured bound pauses the source, keeping its cursor), retries server errors and dropped
connections with the one backoff, refuses a page that is not a listing with a ``SourceError``
and leaves out a single malformed item, keeping the rest of its page. So ``likeness-monitor
up`` and the end-to-end tests run the same crawl engine as a deployment on real platforms.

What makes the demo a demo is its spread policy: every clip is watched and looked at again on
every pass (``DEMO_SPREAD``), so each pass sends every clip of the listing with its grown
counts and spread can be charted from the first minutes, as the demo always has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from monitor.records import ClipSeen, as_utc, utcnow
from monitor.sources.api_client import ApiClient, ResponsePolicy, Verdict, parse
from monitor.sources.base import Feed, Page, Platform
from monitor.sources.crawl_state import CrawlState, FeedState
from monitor.sources.crawler import Crawler, SpreadPolicy
from monitor.sources.registry import crawler_for
from monitor.sources.settings import SourcesSettings

__all__ = ["DEMO_MAX_PAGES", "DEMO_SPREAD", "LISTING_PATH", "DemoPlatform", "demo_crawler"]

LISTING_PATH = "/api/v1/clips"

DEMO_SPREAD = SpreadPolicy(
    hot_views_per_hour=0.0, cool_views_per_hour=0.0, interval_s=0.0, max_watch_s=float("inf")
)
"""Every clip is hot from its first sighting and never cools: each pass sends it again."""

DEMO_MAX_PAGES = 100
"""Pages per pass: the whole listing (a few dozen clips), with a bound like every platform."""


class _Stats(BaseModel):
    model_config = ConfigDict(extra="ignore")

    views: int | None = Field(default=None, ge=0)
    likes: int | None = Field(default=None, ge=0)
    shares: int | None = Field(default=None, ge=0)
    comments: int | None = Field(default=None, ge=0)


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    url: str
    media_url: str | None = None
    title: str | None = None
    caption: str | None = None
    author: str | None = None
    posted_at: datetime | None = None
    stats: _Stats = Field(default_factory=_Stats)


class _Listing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]]
    """Each an ``_Item``, validated alone when its record is made."""
    next_cursor: str | None = None


class _Policy(ResponsePolicy):
    def verdict(self, response: httpx.Response) -> Verdict:
        if response.status_code == 401:
            # No token to refresh here: the platform refused the API key, and says why.
            return Verdict("fail", f"HTTP 401: {response.text[:200]}")
        return super().verdict(response)


class DemoPlatform(Platform):
    """The demo platform at ``base_url`` (e.g. ``http://127.0.0.1:8765``): one feed, its
    listing, newest first. ``api_key`` is sent as ``X-Api-Key``; ``page_size`` asks for that
    many clips a page (the platform's own default without it)."""

    name = "demo"

    def __init__(
        self, base_url: str, *, page_size: int | None = None, api_key: str | None = None
    ) -> None:
        self.base_url = httpx.URL(base_url)
        self.listing_url = self.base_url.join(LISTING_PATH)
        self.page_size = page_size
        self._api_key = api_key

    def policy(self) -> ResponsePolicy:
        return _Policy()

    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self._api_key} if self._api_key else {}

    def feeds(self) -> list[Feed]:
        return [Feed("listing", "listing")]

    async def page(
        self,
        api: ApiClient,
        feed: Feed,
        cursor: str | None,
        since: datetime | None,
        validators: FeedState | None,
    ) -> Page:
        params: dict[str, str | int] = {}
        if cursor:
            params["cursor"] = cursor
        if self.page_size:
            params["limit"] = self.page_size
        listing = parse(
            _Listing, await api.send("GET", self.listing_url, params=params), "a listing page"
        )
        observed_at = utcnow()
        return Page(
            self.clips(listing.items, lambda raw: self._clip(raw, observed_at)),
            listing.next_cursor,
        )

    def _clip(self, raw: dict[str, Any], observed_at: datetime) -> ClipSeen:
        item = _Item.model_validate(raw)
        return ClipSeen(
            platform=self.name,
            clip_id=item.id,
            url=str(self.base_url.join(item.url)),
            media_url=str(self.base_url.join(item.media_url)) if item.media_url else None,
            title=item.title,
            caption=item.caption,
            author=item.author,
            posted_at=as_utc(item.posted_at) if item.posted_at else None,
            observed_at=observed_at,
            views=item.stats.views,
            likes=item.stats.likes,
            shares=item.stats.shares,
            comments=item.stats.comments,
        )


def demo_crawler(
    config: SourcesSettings,
    state: CrawlState,
    base_url: str,
    *,
    interval_s: float,
    flagged: Callable[[], Iterable[str]] | None = None,
) -> Crawler:
    """The crawler of the demo platform at ``base_url``, built as every platform's is
    (``registry.crawler_for``: the configured retries and timeout), passing every
    ``interval_s``."""
    return crawler_for(
        config,
        state,
        DemoPlatform(base_url),
        interval_s=interval_s,
        max_pages=DEMO_MAX_PAGES,
        spread=DEMO_SPREAD,
        flagged=flagged,
    )
