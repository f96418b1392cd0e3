"""X API v2 recent search: posts with video that name a gallery entity, and broad queries.

``GET /2/tweets/search/recent`` with the media expansion (``attachments.media_keys``) returns
the video variants and view counts in ``includes.media``, and the authors in
``includes.users``; pages follow ``meta.next_token``. Every response carries
``x-rate-limit-remaining`` and ``x-rate-limit-reset`` (a Unix time): when nothing remains the
crawler waits for the reset, or pauses the source if that is too far away. Searches ask only
for posts since the last pass (``start_time``, within the seven days recent search covers).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from monitor.records import ClipSeen, utcnow
from monitor.retry import parse_retry_after
from monitor.sources.api_client import (
    ApiClient,
    RateLimit,
    ResponsePolicy,
    Verdict,
    parse,
)
from monitor.sources.base import Feed, Page, Platform
from monitor.sources.crawl_state import FeedState
from monitor.sources.items import platform_time
from monitor.sources.queries import Query

__all__ = ["XPlatform"]

_OVERLAP = timedelta(minutes=10)
_WINDOW = timedelta(days=7) - timedelta(minutes=1)
_MAX_QUERY = 512
_FIELDS = {
    "expansions": "attachments.media_keys,author_id",
    "tweet.fields": "created_at,public_metrics,attachments,author_id",
    "media.fields": "type,url,preview_image_url,variants,public_metrics,duration_ms",
    "user.fields": "username",
}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Includes(_Loose):
    media: list[dict[str, Any]] = Field(default_factory=list)
    users: list[dict[str, Any]] = Field(default_factory=list)


class _Meta(_Loose):
    result_count: int = 0
    next_token: str | None = None


class _Search(_Loose):
    data: list[dict[str, Any]] = Field(default_factory=list)
    includes: _Includes = Field(default_factory=_Includes)
    meta: _Meta = Field(default_factory=_Meta)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reset_in(response: httpx.Response) -> float | None:
    reset = _int(response.headers.get("x-rate-limit-reset"))
    return None if reset is None else max(reset - time.time(), 0.0)


class _Policy(ResponsePolicy):
    def rate_limit(self, response: httpx.Response) -> RateLimit | None:
        remaining = _int(response.headers.get("x-rate-limit-remaining"))
        if remaining is None:
            return None
        return RateLimit(float(remaining), _reset_in(response))

    def verdict(self, response: httpx.Response) -> Verdict:
        if response.status_code == 429:
            wait = _reset_in(response)
            return Verdict(
                "rate_limited",
                "HTTP 429",
                wait
                if wait is not None
                else parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code == 400 and "next_token" in response.text:
            return Verdict("stale", f"HTTP 400: {response.text[:200]}")
        return super().verdict(response)


def _best_media(media: dict[str, Any]) -> str | None:
    variants = [
        v
        for v in media.get("variants") or []
        if isinstance(v, dict) and v.get("content_type") == "video/mp4" and v.get("url")
    ]
    if variants:
        return str(max(variants, key=lambda v: v.get("bit_rate") or 0)["url"])
    url = media.get("url") or media.get("preview_image_url")
    return str(url) if url else None


def _count(metrics: dict[str, Any], *names: str) -> int | None:
    values = [metrics[n] for n in names if isinstance(metrics.get(n), int)]
    return sum(values) if values else None


class XPlatform(Platform):
    name = "x"
    lookup_batch = 100

    def __init__(
        self,
        bearer_token: str,
        queries: Sequence[Query],
        *,
        base_url: str = "https://api.x.com",
        broad_queries: Sequence[str] = (),
        page_size: int = 100,
    ) -> None:
        self._bearer = bearer_token
        self.queries = list(queries)
        self.base_url = base_url.rstrip("/")
        self.broad_queries = tuple(broad_queries)
        self.page_size = page_size

    def policy(self) -> ResponsePolicy:
        return _Policy()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._bearer}"}

    def feeds(self) -> list[Feed]:
        searches = [Feed(f"search:{q.key}", "search", self.render(q)) for q in self.queries]
        broad = [Feed(f"broad:{i}", "search", q) for i, q in enumerate(self.broad_queries)]
        return searches + broad

    @staticmethod
    def render(query: Query) -> str:
        """``("name" OR "alias" OR #tag) has:videos -is:retweet``, within the 512-character cap."""
        suffix = " has:videos -is:retweet"
        if query.words:
            return f"({' '.join(query.words)}){suffix}"  # at most KEY_WORDS words
        parts = [f'"{term}"' for term in query.terms] + [f"#{tag}" for tag in query.hashtags]
        while parts:
            text = f"({' OR '.join(parts)}){suffix}"
            if len(text) <= _MAX_QUERY:
                return text
            parts.pop()
        return suffix.strip()

    async def page(
        self,
        api: ApiClient,
        feed: Feed,
        cursor: str | None,
        since: datetime | None,
        validators: FeedState | None,
    ) -> Page:
        params: dict[str, Any] = {"query": feed.query, "max_results": self.page_size, **_FIELDS}
        if cursor:
            params["next_token"] = cursor
        if since is not None:
            start = max(since - _OVERLAP, utcnow() - _WINDOW)
            params["start_time"] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        response = await api.send("GET", f"{self.base_url}/2/tweets/search/recent", params=params)
        found = parse(_Search, response, "a recent search response")
        return Page(self._clips(found), found.meta.next_token)

    async def lookup(self, api: ApiClient, clip_ids: Sequence[str]) -> list[ClipSeen]:
        response = await api.send(
            "GET", f"{self.base_url}/2/tweets", params={"ids": ",".join(clip_ids), **_FIELDS}
        )
        return self._clips(parse(_Search, response, "a tweets lookup response"))

    def _clips(self, found: _Search) -> list[ClipSeen]:
        media = {m.get("media_key"): m for m in found.includes.media}
        users = {u.get("id"): u.get("username") for u in found.includes.users}
        observed = utcnow()

        def clip(post: dict[str, Any]) -> ClipSeen | None:
            keys = (post.get("attachments") or {}).get("media_keys") or []
            attached = [media[k] for k in keys if k in media]
            videos = [m for m in attached if m.get("type") in ("video", "animated_gif")]
            post_id = post.get("id")
            if not (videos or attached) or not isinstance(post_id, str):
                return None
            chosen = (videos or attached)[0]
            author = users.get(post.get("author_id"))
            metrics = post.get("public_metrics") or {}
            return ClipSeen(
                platform=self.name,
                clip_id=post_id,
                url=f"https://x.com/{author or 'i'}/status/{post_id}",
                media_url=_best_media(chosen),
                caption=post.get("text"),
                author=author,
                posted_at=platform_time(post.get("created_at")),
                observed_at=observed,
                views=_count(chosen.get("public_metrics") or {}, "view_count")
                or _count(metrics, "impression_count"),
                likes=_count(metrics, "like_count"),
                shares=_count(metrics, "retweet_count", "quote_count"),
                comments=_count(metrics, "reply_count"),
            )

        return self.clips(found.data, clip)
