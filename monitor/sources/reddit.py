"""Reddit: app-only OAuth2, ``/search`` for gallery queries, subreddit listings for the rest.

Reddit wants OAuth2 for API clients (``oauth.reddit.com``), a descriptive ``User-Agent``, and
watching of its rate-limit headers: ``X-Ratelimit-Remaining`` (requests left, a float) and
``X-Ratelimit-Reset`` (seconds until the window ends). The app-only token comes from
``POST /api/v1/access_token`` with ``grant_type=client_credentials`` and the client id and
secret as HTTP basic auth; it is renewed before it expires and at once on a 401. Listings page
with ``after`` (the last post's fullname); a search sorted by ``new`` stops paging once it
reaches posts older than the last pass. Only posts that carry a video or an image become
observations: a text post shows nothing to score.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from monitor.records import ClipSeen, utcnow
from monitor.retry import parse_retry_after
from monitor.sources.api_client import (
    ApiClient,
    BearerToken,
    RateLimit,
    ResponsePolicy,
    Verdict,
    parse,
)
from monitor.sources.base import Feed, Page, Platform
from monitor.sources.crawl_state import FeedState
from monitor.sources.queries import Query

__all__ = ["RedditPlatform"]

_OVERLAP = timedelta(minutes=30)


class _Child(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str
    data: dict[str, Any]


class _ListingData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    after: str | None = None
    children: list[_Child]


class _Listing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str
    data: _ListingData


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _Policy(ResponsePolicy):
    def rate_limit(self, response: httpx.Response) -> RateLimit | None:
        remaining = _float(response.headers.get("X-Ratelimit-Remaining"))
        reset = _float(response.headers.get("X-Ratelimit-Reset"))
        if remaining is None and reset is None:
            return None
        return RateLimit(remaining, reset)

    def verdict(self, response: httpx.Response) -> Verdict:
        if response.status_code == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is None:
                wait = _float(response.headers.get("X-Ratelimit-Reset"))
            return Verdict("rate_limited", "HTTP 429", wait)
        return super().verdict(response)


def _media(post: dict[str, Any]) -> str | None:
    for holder in (post.get("secure_media"), post.get("media")):
        if isinstance(holder, dict):
            video = holder.get("reddit_video")
            if isinstance(video, dict) and isinstance(video.get("fallback_url"), str):
                return str(video["fallback_url"])
    url = post.get("url_overridden_by_dest") or post.get("url")
    if isinstance(url, str) and (
        post.get("post_hint") == "image"
        or url.lower().endswith((".mp4", ".jpg", ".jpeg", ".png", ".gif"))
    ):
        return url
    preview = post.get("preview")
    if isinstance(preview, dict) and post.get("post_hint") in ("rich:video", "hosted:video"):
        images = preview.get("images")
        if isinstance(images, list) and images and isinstance(images[0], dict):
            source = images[0].get("source")
            if isinstance(source, dict) and isinstance(source.get("url"), str):
                return str(source["url"])
    return None


def _count(value: Any) -> int | None:
    return max(int(value), 0) if isinstance(value, int | float) else None


def _created(post: dict[str, Any]) -> float | None:
    """When a post was made (Unix seconds), or ``None`` when it does not say as a number that is
    a time. Unknown, not 0: a post read as made in 1970 would look older than the last pass and
    end a search's paging, and its record would carry a false date."""
    value = post.get("created_utc")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):  # NaN, infinite, beyond the calendar
        return None
    return float(value)


class RedditPlatform(Platform):
    name = "reddit"
    lookup_batch = 100

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        queries: Sequence[Query],
        *,
        base_url: str = "https://oauth.reddit.com",
        auth_url: str = "https://www.reddit.com",
        subreddits: Sequence[str] = ("videos", "popular"),
        user_agent: str = "server:likeness-monitor:0.1 (brand protection)",
        page_size: int = 100,
    ) -> None:
        self._credentials = (client_id, client_secret)
        self.queries = list(queries)
        self.base_url = base_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.subreddits = tuple(subreddits)
        self.user_agent = user_agent
        self.page_size = page_size
        self._token = BearerToken(self._fetch_token)

    def policy(self) -> ResponsePolicy:
        return _Policy()

    def token(self) -> BearerToken:
        return self._token

    def headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent}

    async def _fetch_token(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            f"{self.auth_url}/api/v1/access_token",
            data={"grant_type": "client_credentials"},
            auth=self._credentials,
            headers={"User-Agent": self.user_agent},
        )

    def feeds(self) -> list[Feed]:
        searches = [Feed(f"search:{q.key}", "search", self.render(q)) for q in self.queries]
        listings = [Feed(f"r/{sub}/hot", "listing", sub) for sub in self.subreddits]
        return searches + listings

    @staticmethod
    def render(query: Query) -> str:
        if query.words:
            return " ".join(query.words)  # Reddit's search wants every word by default
        return " OR ".join([f'"{term}"' for term in query.terms] + list(query.hashtags))

    async def page(
        self,
        api: ApiClient,
        feed: Feed,
        cursor: str | None,
        since: datetime | None,
        validators: FeedState | None,
    ) -> Page:
        params: dict[str, Any] = {"limit": self.page_size, "raw_json": 1}
        if cursor:
            params["after"] = cursor
        if feed.kind == "search":
            params.update(q=feed.query, sort="new", type="link", t="week")
            url = f"{self.base_url}/search"
        else:
            url = f"{self.base_url}/r/{feed.query}/hot"
        listing = parse(_Listing, await api.send("GET", url, params=params), "a Reddit listing")
        posts = [child.data for child in listing.data.children if child.kind == "t3"]
        after = listing.data.after
        if feed.kind == "search" and since is not None:
            times = [created for post in posts if (created := _created(post)) is not None]
            oldest = min(times, default=None)
            if oldest is not None and oldest < (since - _OVERLAP).timestamp():
                after = None  # sorted by new: the rest was seen in an earlier pass
        return Page(self.clips(posts, self._clip), after or None)

    async def lookup(self, api: ApiClient, clip_ids: Sequence[str]) -> list[ClipSeen]:
        response = await api.send(
            "GET",
            f"{self.base_url}/api/info",
            params={"id": ",".join(f"t3_{i}" for i in clip_ids), "raw_json": 1},
        )
        listing = parse(_Listing, response, "a Reddit listing")
        return self.clips((child.data for child in listing.data.children), self._clip)

    def _clip(self, post: dict[str, Any]) -> ClipSeen | None:
        media = _media(post)
        post_id, permalink = post.get("id"), post.get("permalink")
        if not media or not isinstance(post_id, str) or not isinstance(permalink, str):
            return None
        created = _created(post)
        return ClipSeen(
            platform=self.name,
            clip_id=post_id,
            url=f"https://www.reddit.com{permalink}",
            media_url=media,
            title=post.get("title"),
            caption=post.get("selftext") or None,
            author=post.get("author"),
            posted_at=None if created is None else datetime.fromtimestamp(created, UTC),
            observed_at=utcnow(),
            views=_count(post.get("view_count")),
            likes=_count(post.get("ups", post.get("score"))),
            comments=_count(post.get("num_comments")),
        )
