"""The crawler for the demo platform (``likeness-monitor demo-platform``).

It meets the demo's API the way a production crawler must meet a real one: it follows the
cursor to the end of the listing, waits as long as a ``429`` asks (up to a bound, beyond which
the pass is given up rather than stalled), retries server errors and dropped connections
with exponential backoff, and refuses a page it cannot understand with a ``SourceError``
instead of guessing. A single malformed item is skipped and logged, so one bad entry does not
hide the rest of the listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import SourceError
from monitor.records import ClipSeen, as_utc, utcnow
from monitor.retry import RetryPolicy, parse_retry_after
from monitor.sources.api_client import parse
from monitor.sources.base import Source

__all__ = ["DemoPlatformSource"]

logger = logging.getLogger(__name__)

LISTING_PATH = "/api/v1/clips"


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


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[dict[str, Any]]
    next_cursor: str | None = None


class DemoPlatformSource(Source):
    """Crawls the demo platform at ``base_url`` (e.g. ``http://127.0.0.1:8765``).

    ``client`` is used as given (and left open); without one, each pass opens its own with
    ``timeout_s``. ``api_key`` is sent as ``X-Api-Key``. A ``429`` is waited out as its
    ``Retry-After`` says, at most ``rate_limit_waits`` times per page and never longer than
    ``max_wait_s`` at once; a 5xx answer or a transport error is retried ``retries`` times,
    after ``backoff_s``, then twice that, and so on.
    """

    name = "demo"

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        page_size: int | None = None,
        api_key: str | None = None,
        max_wait_s: float = 30.0,
        rate_limit_waits: int = 5,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = httpx.URL(base_url)
        self.listing_url = self.base_url.join(LISTING_PATH)
        self.page_size = page_size
        self.api_key = api_key
        self.max_wait_s = max_wait_s
        self.rate_limit_waits = rate_limit_waits
        self.retries = retries
        self.backoff_s = backoff_s
        self._backoff = RetryPolicy(backoff_s=backoff_s, max_backoff_s=float("inf"), spread=0.0)
        self.timeout_s = timeout_s
        self._client = client

    async def poll(self) -> AsyncIterator[ClipSeen]:
        async with self._session() as client:
            cursor: str | None = None
            seen_cursors: set[str] = set()
            while True:
                page = await self._fetch_page(client, cursor)
                observed_at = utcnow()
                for raw in page.items:
                    seen = self._observation(raw, observed_at)
                    if seen is not None:
                        yield seen
                cursor = page.next_cursor
                if not cursor:
                    return
                if cursor in seen_cursors:
                    raise SourceError(f"{self.listing_url}: the listing cursor repeats ({cursor})")
                seen_cursors.add(cursor)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            yield client

    async def _fetch_page(self, client: httpx.AsyncClient, cursor: str | None) -> _Page:
        params: dict[str, str | int] = {}
        if cursor:
            params["cursor"] = cursor
        if self.page_size:
            params["limit"] = self.page_size
        headers = {"X-Api-Key": self.api_key} if self.api_key else {}
        failures = waits = 0
        while True:
            try:
                response = await client.get(self.listing_url, params=params, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if response.status_code == 429:
                    waits += 1
                    await asyncio.sleep(self._rate_limit_wait(response, waits))
                    continue
                if response.is_success:
                    return self._parse(response)
                if response.status_code < 500:
                    raise SourceError(
                        f"{self.listing_url}: HTTP {response.status_code}: {response.text[:200]}"
                    )
                problem = f"HTTP {response.status_code}"
            failures += 1
            if failures > self.retries:
                raise SourceError(f"{self.listing_url}: {problem} (gave up after {failures} tries)")
            delay = self._backoff.backoff(failures)
            logger.warning("%s: %s; retrying in %.1f s", self.listing_url, problem, delay)
            await asyncio.sleep(delay)

    def _rate_limit_wait(self, response: httpx.Response, waits: int) -> float:
        if waits > self.rate_limit_waits:
            raise SourceError(f"{self.listing_url}: still rate limited after {waits - 1} waits")
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            wait = self._backoff.backoff(waits)
        if wait > self.max_wait_s:
            raise SourceError(
                f"{self.listing_url}: rate limited for {wait:.0f} s, over the {self.max_wait_s:.0f} s"
                " this source waits; the next pass will try again"
            )
        logger.info("%s: rate limited; waiting %.1f s", self.listing_url, wait)
        return wait

    def _parse(self, response: httpx.Response) -> _Page:
        return parse(_Page, response, "a listing page")

    def _observation(self, raw: dict[str, Any], observed_at: datetime) -> ClipSeen | None:
        try:
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
        except ValidationError as exc:
            logger.warning("%s: skipping a malformed item %r: %s", self.listing_url, raw, exc)
            return None
