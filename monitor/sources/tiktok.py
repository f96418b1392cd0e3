"""TikTok Research API: ``POST /v2/research/video/query/`` with query conditions.

A query is a tree of conditions (``and`` / ``or`` / ``not`` of ``{field_name, operation,
field_values}``) over a date range of at most 30 days. Pages follow ``cursor`` and
``search_id`` from the previous answer while ``has_more``; both, and the dates, are saved as
the feed's cursor so a restarted crawler continues the same search. Answers carry an
``error`` object (``code`` ``ok`` on success); ``access_token_invalid`` (401) renews the
client access token (``POST /v2/oauth/token/``, ``grant_type=client_credentials``, valid two
hours), ``rate_limit_exceeded`` (429) is waited out, and the daily allowance (1,000 requests,
reset at midnight UTC) is counted before each request. The Research API gives counts, not
media files: ``media_url`` is left empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from monitor.errors import SourceError
from monitor.records import ClipSeen, utcnow
from monitor.retry import parse_retry_after
from monitor.sources.api_client import (
    ApiClient,
    BearerToken,
    ResponsePolicy,
    Verdict,
    error_reason,
    parse,
)
from monitor.sources.base import Feed, Page, Platform, QuotaSpec
from monitor.sources.crawl_state import FeedState
from monitor.sources.queries import Query

__all__ = ["FIELDS", "TikTokPlatform"]

FIELDS = (
    "id,video_description,create_time,region_code,share_count,view_count,like_count,"
    "comment_count,username,hashtag_names"
)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Error(_Loose):
    code: str
    message: str = ""
    log_id: str | None = None


class _Data(_Loose):
    videos: list[dict[str, Any]] = Field(default_factory=list)
    cursor: int | None = None
    has_more: bool = False
    search_id: str | None = None


class _Answer(_Loose):
    data: _Data = Field(default_factory=_Data)
    error: _Error


def _midnight_utc() -> datetime:
    today = utcnow().date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)


class _Policy(ResponsePolicy):
    def verdict(self, response: httpx.Response) -> Verdict:
        code = error_reason(response, "error", "code") or ""
        message = error_reason(response, "error", "message") or ""
        if "quota" in code or "quota" in message.lower():
            return Verdict("quota", f"{code}: {message}", resume_at=_midnight_utc())
        if code == "access_token_invalid":
            return Verdict("auth", code)
        if code == "rate_limit_exceeded" or response.status_code == 429:
            return Verdict(
                "rate_limited",
                code or "HTTP 429",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if code == "invalid_params" and "search_id" in message.lower():
            return Verdict("stale", message)
        if response.status_code == 200 and code not in ("", "ok"):
            return Verdict("fail", f"{code}: {message}")
        return super().verdict(response)


def _condition(field: str, values: Sequence[str], operation: str = "IN") -> dict[str, Any]:
    return {"field_name": field, "operation": operation, "field_values": list(values)}


class TikTokPlatform(Platform):
    name = "tiktok"
    lookup_batch = 100

    def __init__(
        self,
        client_key: str,
        client_secret: str,
        queries: Sequence[Query],
        *,
        base_url: str = "https://open.tiktokapis.com",
        region_codes: Sequence[str] = ("US",),
        days: int = 2,
        daily_requests: int = 1000,
        page_size: int = 100,
    ) -> None:
        self._credentials = (client_key, client_secret)
        self.queries = list(queries)
        self.base_url = base_url.rstrip("/")
        self.region_codes = tuple(region_codes)
        self.days = days
        self.page_size = page_size
        self.quota = QuotaSpec(daily_requests, UTC)
        self._token = BearerToken(self._fetch_token)

    def policy(self) -> ResponsePolicy:
        return _Policy()

    def token(self) -> BearerToken:
        return self._token

    async def _fetch_token(self, client: httpx.AsyncClient) -> httpx.Response:
        key, secret = self._credentials
        return await client.post(
            f"{self.base_url}/v2/oauth/token/",
            data={"client_key": key, "client_secret": secret, "grant_type": "client_credentials"},
            headers={"Cache-Control": "no-cache"},
        )

    def feeds(self) -> list[Feed]:
        searches = [Feed(f"search:{q.key}", "search", self.condition(q)) for q in self.queries]
        broad = [Feed("regions:" + ",".join(self.region_codes), "broad", None)]
        return searches + (broad if self.region_codes else [])

    @staticmethod
    def condition(query: Query) -> dict[str, Any]:
        """Any of the names as a keyword, or any hashtag (TikTok stores them lower case); or
        every key word of a description."""
        if query.words:
            return {"and": [_condition("keyword", [word], "EQ") for word in query.words]}
        anyof = [_condition("keyword", [term], "EQ") for term in query.terms]
        if query.hashtags:
            anyof.append(_condition("hashtag_name", [tag.lower() for tag in query.hashtags]))
        return {"or": anyof}

    def _query(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.region_codes:
            query["and"] = [_condition("region_code", self.region_codes)]
        if extra:
            for key, conditions in extra.items():
                query.setdefault(key, []).extend(conditions)
        return query

    async def page(
        self,
        api: ApiClient,
        feed: Feed,
        cursor: str | None,
        since: datetime | None,
        validators: FeedState | None,
    ) -> Page:
        if cursor:
            saved = json.loads(cursor)
        else:
            end = utcnow().date()
            start = end - timedelta(days=self.days - 1)
            if since is not None:
                start = max(start, since.astimezone(UTC).date())
            saved = {"start": start.strftime("%Y%m%d"), "end": end.strftime("%Y%m%d")}
        body: dict[str, Any] = {
            "query": self._query(feed.query),
            "start_date": saved["start"],
            "end_date": saved["end"],
            "max_count": self.page_size,
            "is_random": False,
        }
        if "cursor" in saved:
            body.update(cursor=saved["cursor"], search_id=saved["search_id"])
        answer = await self._ask(api, body)
        data = answer.data
        following = None
        if data.has_more and data.cursor is not None and data.search_id:
            following = json.dumps({**saved, "cursor": data.cursor, "search_id": data.search_id})
        return Page(self.clips(data.videos, self._clip), following)

    async def lookup(self, api: ApiClient, clip_ids: Sequence[str]) -> list[ClipSeen]:
        end = utcnow().date()
        body = {
            "query": {"and": [_condition("video_id", list(clip_ids))]},
            "start_date": (end - timedelta(days=29)).strftime("%Y%m%d"),
            "end_date": end.strftime("%Y%m%d"),
            "max_count": min(len(clip_ids), 100),
        }
        answer = await self._ask(api, body)
        return self.clips(answer.data.videos, self._clip)

    async def _ask(self, api: ApiClient, body: dict[str, Any]) -> _Answer:
        response = await api.send(
            "POST",
            f"{self.base_url}/v2/research/video/query/",
            params={"fields": FIELDS},
            json=body,
        )
        answer = parse(_Answer, response, "a video query response")
        if answer.error.code != "ok":
            raise SourceError(f"tiktok: {answer.error.code}: {answer.error.message}")
        return answer

    def _clip(self, video: dict[str, Any]) -> ClipSeen | None:
        if video.get("id") is None:
            return None
        video_id = str(video["id"])
        user = video.get("username")
        created = video.get("create_time")
        tags = " ".join(f"#{t}" for t in video.get("hashtag_names") or [] if isinstance(t, str))
        return ClipSeen(
            platform=self.name,
            clip_id=video_id,
            url=f"https://www.tiktok.com/@{user or '_'}/video/{video_id}",
            media_url=None,
            caption=" ".join(p for p in (video.get("video_description"), tags) if p) or None,
            author=user,
            posted_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
            observed_at=utcnow(),
            views=_count(video.get("view_count")),
            likes=_count(video.get("like_count")),
            shares=_count(video.get("share_count")),
            comments=_count(video.get("comment_count")),
        )


def _count(value: Any) -> int | None:
    return max(int(value), 0) if isinstance(value, int | float) else None
