"""Local stand-ins for the platforms' APIs, on 127.0.0.1, answering in their documented shapes.

Each fake keeps a catalogue of videos, pages through it with the platform's own cursor, checks
the credentials the platform checks, and can be told to misbehave: ``fail(path, *answers)``
queues answers (a 429 with its headers, a 500, a malformed body, an expired-token 401) that
the next requests to that path get before the normal answer (``None`` in the queue: answer
normally that time). ``requests`` records what came.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from monitor.records import ClipSeen
from monitor.sources.crawler import Crawler

__all__ = [
    "Answer",
    "FakePlatform",
    "Video",
    "catalogue",
    "crawl",
    "serve",
]

Answer = Callable[[], web.Response]


@dataclass
class Video:
    id: str
    title: str
    author: str
    views: int
    likes: int = 0
    comments: int = 0
    shares: int = 0
    posted_at: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=2))
    posted_as: Any = None
    """What the platform writes for the posting time instead of ``posted_at`` (a malformed one)."""
    synthetic: bool | None = None
    """YouTube's ``status.containsSyntheticMedia`` (None: not set, so not returned)."""


def catalogue(n: int, prefix: str = "v") -> list[Video]:
    """``n`` videos; the first ones spread fastest (most views for the same age)."""
    return [
        Video(
            id=f"{prefix}{i:03d}", title=f"clip {i}", author=f"author{i % 3}", views=(n - i) * 1000
        )
        for i in range(n)
    ]


async def crawl(source: Crawler) -> list[ClipSeen]:
    """Everything one pass of ``source`` yields, each page committed as the next is asked for."""
    return [clip async for clip in source.poll()]


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return lambda: web.json_response(body, status=status, headers=headers)


def raw_answer(text: str, status: int = 200, content_type: str = "application/json") -> Answer:
    return lambda: web.Response(text=text, status=status, content_type=content_type)


class FakePlatform:
    """Queued faults per path, and a log of requests (path, query, headers, body)."""

    def __init__(self) -> None:
        self.faults: dict[str, list[Answer | None]] = {}
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""

    def fail(self, path: str, *answers: Answer | None) -> None:
        self.faults.setdefault(path, []).extend(answers)

    async def record(self, request: web.Request) -> web.Response | None:
        body = await request.read()
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body.decode(errors="replace"),
            }
        )
        queued = self.faults.get(request.path)
        if queued:
            answer = queued.pop(0)
            return answer() if answer is not None else None
        return None

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def app(self) -> web.Application:
        raise NotImplementedError


@contextlib.asynccontextmanager
async def serve(fake: FakePlatform) -> AsyncIterator[str]:
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake.base_url
    finally:
        await runner.cleanup()


def dumps(body: Any) -> str:
    return json.dumps(body)


# --- YouTube Data API v3 ----------------------------------------------------------------------


def youtube_error(status: int, reason: str, message: str, domain: str = "youtube.quota") -> Answer:
    """An error body as the YouTube Data API writes it."""
    return json_answer(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
            }
        },
        status=status,
    )


QUOTA_EXCEEDED = youtube_error(
    403,
    "quotaExceeded",
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.',
)


class FakeYouTube(FakePlatform):
    """``/youtube/v3/search`` and ``/youtube/v3/videos`` with pageTokens, ETags and a quota."""

    KEY = "AIzaFAKE-youtube-key-0123456789"

    def __init__(self, found: list[Video], popular: list[Video] | None = None) -> None:
        super().__init__()
        self.found = found
        self.popular = popular or []
        self.by_id = {v.id: v for v in [*found, *self.popular]}
        self.quota_left: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/youtube/v3/search", self.search)
        app.router.add_get("/youtube/v3/videos", self.videos)
        return app

    def _refuse(self, request: web.Request, cost: int) -> web.Response | None:
        if request.headers.get("X-Goog-Api-Key") != self.KEY:
            return youtube_error(
                400, "badRequest", "API key not valid. Please pass a valid API key.", "global"
            )()
        if self.quota_left is not None:
            if self.quota_left < cost:
                return QUOTA_EXCEEDED()
            self.quota_left -= cost
        return None

    def _page(
        self, request: web.Request, videos: list[Video], kind: str, item: Callable[[Video], Any]
    ) -> web.Response:
        size = int(request.query.get("maxResults", "5"))
        token = request.query.get("pageToken")
        start = int(token[1:]) if token else 0
        chunk = videos[start : start + size]
        body: dict[str, Any] = {
            "kind": kind,
            "pageInfo": {"totalResults": len(videos), "resultsPerPage": size},
            "items": [item(v) for v in chunk],
        }
        if start + size < len(videos):
            body["nextPageToken"] = f"p{start + size}"
        etag = f'"{kind}-{len(videos)}-{start}"'
        body["etag"] = etag
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.json_response(body, headers={"ETag": etag})

    async def search(self, request: web.Request) -> web.Response:
        answer = await self.record(request) or self._refuse(request, 100)
        if answer is not None:
            return answer
        found = self.found
        after = request.query.get("publishedAfter")
        if after:
            since = datetime.fromisoformat(after.replace("Z", "+00:00"))
            found = [v for v in found if v.posted_at > since]
        return self._page(
            request,
            found,
            "youtube#searchListResponse",
            lambda v: {
                "kind": "youtube#searchResult",
                "id": {"kind": "youtube#video", "videoId": v.id},
                "snippet": {"title": v.title, "publishedAt": v.posted_at.isoformat()},
            },
        )

    async def videos(self, request: web.Request) -> web.Response:
        answer = await self.record(request) or self._refuse(request, 1)
        if answer is not None:
            return answer
        if request.query.get("chart") == "mostPopular":
            videos = self.popular
        else:
            ids = request.query.get("id", "").split(",")
            videos = [self.by_id[i] for i in ids if i in self.by_id]
        parts = set(request.query.get("part", "").split(",")) | {"kind", "id"}

        def item(v: Video) -> dict[str, Any]:  # only the parts asked for, as YouTube answers
            return {k: value for k, value in self.resource(v).items() if k in parts}

        return self._page(request, videos, "youtube#videoListResponse", item)

    @staticmethod
    def resource(v: Video) -> dict[str, Any]:
        status: dict[str, Any] = {
            "uploadStatus": "processed",
            "privacyStatus": "public",
            "license": "youtube",
            "embeddable": True,
            "publicStatsViewable": True,
            "madeForKids": False,
        }
        if v.synthetic is not None:
            status["containsSyntheticMedia"] = v.synthetic
        return {
            "kind": "youtube#video",
            "id": v.id,
            "snippet": {
                "publishedAt": v.posted_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                if v.posted_as is None
                else v.posted_as,
                "channelTitle": v.author,
                "title": v.title,
                "description": f"about {v.title}",
                "thumbnails": {
                    "default": {"url": f"https://i.ytimg.com/vi/{v.id}/default.jpg"},
                    "high": {"url": f"https://i.ytimg.com/vi/{v.id}/hqdefault.jpg"},
                },
            },
            "statistics": {
                "viewCount": str(v.views),
                "likeCount": str(v.likes),
                "commentCount": str(v.comments),
                "favoriteCount": "0",
            },
            "status": status,
        }


# --- test doubles for time ------------------------------------------------------------------


class Sleeps:
    """Records every wait a crawler asks for instead of sleeping it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def quick_retry(sleeps: Sleeps, **overrides: Any) -> Any:
    import random

    from monitor.retry import RetryPolicy

    options: dict[str, Any] = {
        "retries": 3,
        "backoff_s": 0.5,
        "max_wait_s": 60.0,
        "sleep": sleeps,
        "rng": random.Random(7),
    }
    options.update(overrides)
    return RetryPolicy(**options)


# --- Reddit -----------------------------------------------------------------------------------


class FakeReddit(FakePlatform):
    """App-only OAuth2 at ``/api/v1/access_token``; listings with ``after``; rate-limit headers."""

    CLIENT = ("reddit-client-id", "reddit-client-secret-xyz")

    def __init__(self, posts: list[Video]) -> None:
        super().__init__()
        self.posts = posts
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.remaining = 600.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/access_token", self.token)
        app.router.add_get("/search", self.listing)
        app.router.add_get("/r/{sub}/hot", self.listing)
        app.router.add_get("/api/info", self.info)
        return app

    def expire_tokens(self) -> None:
        self.valid.clear()

    async def token(self, request: web.Request) -> web.Response:
        import base64

        await self.record(request)
        expected = base64.b64encode(":".join(self.CLIENT).encode()).decode()
        form = await request.post()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"reddit-token-{len(self.issued)}"
        self.issued.append(token)
        self.valid.add(token)
        return web.json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}
        )

    def _headers(self) -> dict[str, str]:
        self.remaining -= 1
        return {
            "X-Ratelimit-Used": str(int(600 - self.remaining)),
            "X-Ratelimit-Remaining": f"{max(self.remaining, 0):.1f}",
            "X-Ratelimit-Reset": "42",
        }

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid:
            return web.json_response(
                {"message": "Unauthorized", "error": 401},
                status=401,
                headers={"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
            )
        return None

    @staticmethod
    def thing(v: Video) -> dict[str, Any]:
        return {
            "kind": "t3",
            "data": {
                "id": v.id,
                "name": f"t3_{v.id}",
                "title": v.title,
                "author": v.author,
                "subreddit": "videos",
                "permalink": f"/r/videos/comments/{v.id}/{v.title.replace(' ', '_')}/",
                "url": f"https://v.redd.it/{v.id}",
                "created_utc": v.posted_at.timestamp() if v.posted_as is None else v.posted_as,
                "ups": v.likes,
                "score": v.likes,
                "num_comments": v.comments,
                "view_count": None,
                "is_video": True,
                "post_hint": "hosted:video",
                "media": {
                    "reddit_video": {
                        "fallback_url": f"https://v.redd.it/{v.id}/DASH_720.mp4?source=fallback",
                        "duration": 30,
                    }
                },
            },
        }

    def _listing(self, things: list[dict[str, Any]], after: str | None) -> web.Response:
        body = {
            "kind": "Listing",
            "data": {"after": after, "before": None, "dist": len(things), "children": things},
        }
        return web.json_response(body, headers=self._headers())

    async def listing(self, request: web.Request) -> web.Response:
        answer = await self.record(request) or self._unauthorised(request)
        if answer is not None:
            return answer
        size = int(request.query.get("limit", "25"))
        after = request.query.get("after")
        ids = [v.id for v in self.posts]
        start = ids.index(after.removeprefix("t3_")) + 1 if after else 0
        chunk = self.posts[start : start + size]
        following = f"t3_{chunk[-1].id}" if chunk and start + size < len(self.posts) else None
        # A text post shows nothing to score; it is listed but not observed.
        things = [self.thing(v) for v in chunk]
        things.append(
            {"kind": "t3", "data": {"id": "self1", "permalink": "/r/x/1/", "is_self": True}}
        )
        return self._listing(things, following)

    async def info(self, request: web.Request) -> web.Response:
        answer = await self.record(request) or self._unauthorised(request)
        if answer is not None:
            return answer
        wanted = {i.removeprefix("t3_") for i in request.query.get("id", "").split(",")}
        return self._listing([self.thing(v) for v in self.posts if v.id in wanted], None)


# --- X API v2 ---------------------------------------------------------------------------------


class FakeX(FakePlatform):
    """``/2/tweets/search/recent`` with media expansions, ``next_token`` and x-rate-limit-*."""

    BEARER = "AAAAAAAAAAAAAAAAAAAAAfake-x-bearer"

    def __init__(self, posts: list[Video]) -> None:
        super().__init__()
        self.posts = posts
        self.remaining = 450

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/2/tweets/search/recent", self.search)
        return app

    def limit_headers(self, reset_in: int = 900) -> dict[str, str]:
        import time

        return {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(int(time.time()) + reset_in),
        }

    async def search(self, request: web.Request) -> web.Response:
        answer = await self.record(request)
        if answer is not None:
            return answer
        if request.headers.get("Authorization") != f"Bearer {self.BEARER}":
            return web.json_response(
                {
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                },
                status=401,
            )
        self.remaining -= 1
        size = int(request.query.get("max_results", "10"))
        token = request.query.get("next_token")
        start = int(token.removeprefix("tok")) if token else 0
        chunk = self.posts[start : start + size]
        meta: dict[str, Any] = {"result_count": len(chunk)}
        if chunk:
            meta.update(newest_id=chunk[0].id, oldest_id=chunk[-1].id)
        if start + size < len(self.posts):
            meta["next_token"] = f"tok{start + size}"
        body = {
            "data": [
                {
                    "id": v.id,
                    "text": f"{v.title} #StrangerThings",
                    "author_id": f"u{v.author}",
                    "created_at": v.posted_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                    if v.posted_as is None
                    else v.posted_as,
                    "attachments": {"media_keys": [f"7_{v.id}"]},
                    "public_metrics": {
                        "retweet_count": v.shares,
                        "reply_count": v.comments,
                        "like_count": v.likes,
                        "quote_count": 1,
                        "impression_count": v.views * 3,
                    },
                    "edit_history_tweet_ids": [v.id],
                }
                for v in chunk
            ],
            "includes": {
                "media": [
                    {
                        "media_key": f"7_{v.id}",
                        "type": "video",
                        "duration_ms": 30000,
                        "preview_image_url": f"https://pbs.twimg.com/{v.id}.jpg",
                        "public_metrics": {"view_count": v.views},
                        "variants": [
                            {
                                "content_type": "application/x-mpegURL",
                                "url": f"https://video.twimg.com/{v.id}.m3u8",
                            },
                            {
                                "bit_rate": 256000,
                                "content_type": "video/mp4",
                                "url": f"https://video.twimg.com/{v.id}/320.mp4",
                            },
                            {
                                "bit_rate": 2176000,
                                "content_type": "video/mp4",
                                "url": f"https://video.twimg.com/{v.id}/1280.mp4",
                            },
                        ],
                    }
                    for v in chunk
                ],
                "users": [
                    {"id": f"u{v.author}", "username": v.author, "name": v.author} for v in chunk
                ],
            },
            "meta": meta,
        }
        if not chunk:
            body = {"meta": {"result_count": 0}}
        return web.json_response(body, headers=self.limit_headers())


# --- TikTok Research API ----------------------------------------------------------------------


def tiktok_error(status: int, code: str, message: str) -> Answer:
    return json_answer(
        {"data": {}, "error": {"code": code, "message": message, "log_id": "20240501ABCDEF"}},
        status=status,
    )


class FakeTikTok(FakePlatform):
    """``/v2/oauth/token/`` (client credentials) and ``/v2/research/video/query/``."""

    KEY = ("tiktok-client-key", "tiktok-client-secret-xyz")

    def __init__(self, videos: list[Video]) -> None:
        super().__init__()
        self.videos = videos
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.bodies: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/oauth/token/", self.token)
        app.router.add_post("/v2/research/video/query/", self.query)
        return app

    async def token(self, request: web.Request) -> web.Response:
        await self.record(request)
        form = await request.post()
        if (form.get("client_key"), form.get("client_secret")) != self.KEY or form.get(
            "grant_type"
        ) != "client_credentials":
            return json_answer(
                {
                    "error": "invalid_client",
                    "error_description": "Client key or secret is incorrect.",
                    "log_id": "x",
                },
                status=401,
            )()
        token = f"clt.fake{len(self.issued)}"
        self.issued.append(token)
        self.valid.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": 7200, "token_type": "Bearer"}
        )

    async def query(self, request: web.Request) -> web.Response:
        answer = await self.record(request)
        if answer is not None:
            return answer
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return tiktok_error(
                401,
                "access_token_invalid",
                "The access token is invalid or not found in the request.",
            )()
        body = await request.json()
        self.bodies.append(body)
        size = int(body.get("max_count", 20))
        cursor = int(body.get("cursor") or 0)
        videos = self.videos
        ids = [c for c in body["query"].get("and", []) if c["field_name"] == "video_id"]
        if ids:
            videos = [v for v in videos if v.id in ids[0]["field_values"]]
        chunk = videos[cursor : cursor + size]
        data = {
            "videos": [
                {
                    "id": int(v.id),
                    "video_description": v.title,
                    "create_time": int(v.posted_at.timestamp()),
                    "region_code": "US",
                    "username": v.author,
                    "view_count": v.views,
                    "like_count": v.likes,
                    "share_count": v.shares,
                    "comment_count": v.comments,
                    "hashtag_names": ["strangerthings"],
                }
                for v in chunk
            ],
            "cursor": cursor + len(chunk),
            "has_more": cursor + size < len(videos),
            "search_id": body.get("search_id") or "7414696757969294378",
        }
        return web.json_response(
            {"data": data, "error": {"code": "ok", "message": "", "log_id": "20240501"}}
        )
