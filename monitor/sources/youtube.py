"""YouTube Data API v3: ``search.list`` for gallery queries, the ``mostPopular`` chart for the rest.

Search results carry no counts, so each search page is followed by one ``videos.list`` for
the statistics of its videos. Quota is what limits this platform: ``search.list`` costs 100
units and ``videos.list`` 1, of a default 10,000 a day renewed at midnight Pacific time; the
crawler counts units before each request and pauses the source when the day's are spent, or
when the API answers ``403 quotaExceeded`` first. Searches ask only for videos published since
the last full pass (``publishedAfter``, with an hour's overlap for indexing delay), and first
pages are conditional (``If-None-Match``), which answers ``304`` when nothing changed.

The API key travels in the ``X-Goog-Api-Key`` header, not in the URL, so it never reaches a
log. YouTube does not hand out video files: ``media_url`` is the largest thumbnail, which is
what the scorer can see of the clip.

``videos.list`` also asks for the ``status`` part (no extra quota: a call costs 1 unit whatever
its parts) for ``status.containsSyntheticMedia``, the uploader's disclosure of altered or
synthetic content that YouTube returns when it is set (API revision of 2024-10-30): it becomes
``ClipSeen.platform_synthetic`` (absent: None).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.records import ClipSeen, utcnow
from monitor.sources.api_client import ApiClient, ResponsePolicy, Verdict, error_reason, parse
from monitor.sources.base import Feed, Page, Platform, QuotaSpec
from monitor.sources.crawl_state import FeedState
from monitor.sources.items import platform_time
from monitor.sources.queries import Query

__all__ = ["SEARCH_COST", "VIDEOS_COST", "YouTubePlatform"]

SEARCH_COST = 100
VIDEOS_COST = 1
PACIFIC = ZoneInfo("America/Los_Angeles")
_OVERLAP = timedelta(hours=1)
_QUOTA_REASONS = ("quotaExceeded", "dailyLimitExceeded")
_RATE_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _SearchId(_Loose):
    videoId: str | None = None


class _SearchItem(_Loose):
    id: _SearchId


class _SearchList(_Loose):
    items: list[dict[str, Any]]
    """Read one by one (``_video_id``): a malformed item is left out, not its page."""
    nextPageToken: str | None = None


class _Video(_Loose):
    id: str = Field(min_length=1)
    snippet: dict[str, Any] = Field(default_factory=dict)
    statistics: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] = Field(default_factory=dict)


_VIDEO_PARTS = "snippet,statistics,status"
"""What ``videos.list`` asks for: titles, counts, and the synthetic-media label."""


class _VideoList(_Loose):
    items: list[dict[str, Any]]
    """Each a ``_Video``, validated alone when its record is made."""
    nextPageToken: str | None = None


def next_pacific_midnight(now: datetime | None = None) -> datetime:
    local = (now or utcnow()).astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), PACIFIC)
    return midnight.astimezone(UTC)


class _Policy(ResponsePolicy):
    def verdict(self, response: httpx.Response) -> Verdict:
        if response.status_code in (400, 403):
            reason = error_reason(response, "error", "errors", 0, "reason") or ""
            if reason in _QUOTA_REASONS:
                return Verdict(
                    "quota", f"quota spent ({reason})", resume_at=next_pacific_midnight()
                )
            if reason in _RATE_REASONS:
                return Verdict("rate_limited", reason)
            if reason == "invalidPageToken":
                return Verdict("stale", reason)
        return super().verdict(response)


def _count(value: Any) -> int | None:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return None


def _thumbnail(snippet: dict[str, Any]) -> str | None:
    thumbnails = snippet.get("thumbnails")
    if not isinstance(thumbnails, dict):
        return None
    for size in ("maxres", "standard", "high", "medium", "default"):
        entry = thumbnails.get(size)
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            return str(entry["url"])
    return None


def _video_id(item: dict[str, Any]) -> str | None:
    try:
        return _SearchItem.model_validate(item).id.videoId
    except ValidationError:
        return None


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class YouTubePlatform(Platform):
    name = "youtube"
    lookup_batch = 50

    def __init__(
        self,
        api_key: str,
        queries: Sequence[Query],
        *,
        base_url: str = "https://www.googleapis.com/youtube/v3",
        region_codes: Sequence[str] = ("US",),
        daily_quota: int = 10_000,
        page_size: int = 50,
    ) -> None:
        self._api_key = api_key
        self.queries = list(queries)
        self.base_url = base_url.rstrip("/")
        self.region_codes = tuple(region_codes)
        self.page_size = page_size
        self.quota = QuotaSpec(daily_quota, PACIFIC)

    def policy(self) -> ResponsePolicy:
        return _Policy()

    def headers(self) -> dict[str, str]:
        return {"X-Goog-Api-Key": self._api_key}

    def feeds(self) -> list[Feed]:
        searches = [Feed(f"search:{q.key}", "search", self.render(q)) for q in self.queries]
        charts = [Feed(f"popular:{region}", "popular", region) for region in self.region_codes]
        return searches + charts

    @staticmethod
    def render(query: Query) -> str:
        """Names as phrases and hashtags, joined with YouTube's ``|`` (OR); a description's
        key words side by side (all of them)."""
        if query.words:
            return " ".join(query.words)
        parts = [f'"{term}"' for term in query.terms] + [f"#{tag}" for tag in query.hashtags]
        return "|".join(parts)

    async def page(
        self,
        api: ApiClient,
        feed: Feed,
        cursor: str | None,
        since: datetime | None,
        validators: FeedState | None,
    ) -> Page:
        conditional = {"If-None-Match": validators.etag} if validators and validators.etag else {}
        params: dict[str, Any] = {"maxResults": self.page_size}
        if cursor:
            params["pageToken"] = cursor
        if feed.kind == "popular":
            params.update(part=_VIDEO_PARTS, chart="mostPopular", regionCode=feed.query)
            response = await api.send(
                "GET",
                f"{self.base_url}/videos",
                params=params,
                headers=conditional,
                cost=VIDEOS_COST,
            )
            if response.status_code == 304:
                return Page([], not_modified=True)
            listing = parse(_VideoList, response, "a videos.list response")
            return Page(
                self.clips(listing.items, self._clip),
                listing.nextPageToken,
                etag=response.headers.get("ETag"),
            )
        params.update(part="snippet", type="video", order="date", q=feed.query)
        if since is not None:
            params["publishedAfter"] = _rfc3339(since - _OVERLAP)
        response = await api.send(
            "GET", f"{self.base_url}/search", params=params, headers=conditional, cost=SEARCH_COST
        )
        if response.status_code == 304:
            return Page([], not_modified=True)
        found = parse(_SearchList, response, "a search.list response")
        ids = [video_id for item in found.items if (video_id := _video_id(item))]
        return Page(
            await self.lookup(api, ids) if ids else [],
            found.nextPageToken,
            etag=response.headers.get("ETag"),
        )

    async def lookup(self, api: ApiClient, clip_ids: Sequence[str]) -> list[ClipSeen]:
        clips: list[ClipSeen] = []
        for start in range(0, len(clip_ids), self.lookup_batch):
            chunk = clip_ids[start : start + self.lookup_batch]
            response = await api.send(
                "GET",
                f"{self.base_url}/videos",
                params={"part": _VIDEO_PARTS, "id": ",".join(chunk), "maxResults": 50},
                cost=VIDEOS_COST,
            )
            listing = parse(_VideoList, response, "a videos.list response")
            clips += self.clips(listing.items, self._clip)
        return clips

    def _clip(self, item: dict[str, Any]) -> ClipSeen:
        video = _Video.model_validate(item)
        snippet, stats = video.snippet, video.statistics
        synthetic = video.status.get("containsSyntheticMedia")
        return ClipSeen(
            platform=self.name,
            clip_id=video.id,
            url=f"https://www.youtube.com/watch?v={video.id}",
            media_url=_thumbnail(snippet),
            title=snippet.get("title"),
            caption=snippet.get("description"),
            author=snippet.get("channelTitle"),
            posted_at=platform_time(snippet.get("publishedAt")),
            observed_at=utcnow(),
            views=_count(stats.get("viewCount")),
            likes=_count(stats.get("likeCount")),
            comments=_count(stats.get("commentCount")),
            platform_synthetic=synthetic if isinstance(synthetic, bool) else None,
        )
