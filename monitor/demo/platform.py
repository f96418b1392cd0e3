"""A local stand-in for a video platform's listing API, so the whole pipeline runs offline.

It behaves the way the crawlers must cope with on real platforms: the listing is paged behind
an opaque cursor, counts change between polls (views grow from the moment the server starts,
at a steady rate per clip, so spread can be charted), and a client polling too fast is told
to slow down with ``429`` and ``Retry-After``. It also serves each clip's media and a watch
page, and answers 404 for the clip whose media was taken down.

Time comes from an injectable monotonic ``clock``, so tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web
from yarl import URL

from monitor.demo.catalogue import DemoCatalogue, DemoClip, build_demo

__all__ = [
    "API_KEY_HEADER",
    "MAX_PAGE_SIZE",
    "create_platform_app",
    "run_demo_platform",
    "serve_platform",
]

API_KEY_HEADER = "X-Api-Key"
"""Clients that send this header are rate-limited by its value, others by their address."""

MAX_PAGE_SIZE = 50

Clock = Callable[[], float]


class _RateLimiter:
    """A token bucket per client: ``burst`` requests at once, then one per ``interval_s``.

    The burst lets one crawl pass page through the listing; polling again straight after it
    is what gets refused.
    """

    def __init__(self, interval_s: float, burst: int, clock: Clock) -> None:
        self._interval = interval_s
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> float:
        """Take a token: 0.0 if one was free, else the seconds until one will be."""
        if self._interval <= 0:
            return 0.0
        now = self._clock()
        tokens, since = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - since) / self._interval)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) * self._interval


class _Platform:
    def __init__(
        self,
        catalogue: DemoCatalogue,
        *,
        min_poll_interval_s: float,
        burst: int,
        page_size: int,
        clock: Clock,
    ) -> None:
        self.catalogue = catalogue
        self.page_size = page_size
        self.clock = clock
        self.started = clock()
        self.started_at = datetime.now(UTC).replace(microsecond=0)
        self.limiter = _RateLimiter(min_poll_interval_s, burst, clock)
        # Newest first, as platform feeds list them.
        self.listing = sorted(catalogue.clips, key=lambda clip: (clip.age_s, clip.id))

    async def clips(self, request: web.Request) -> web.Response:
        client = request.headers.get(API_KEY_HEADER) or request.remote or "unknown"
        wait = self.limiter.take(client)
        if wait > 0:
            return web.json_response(
                {"error": "rate_limited", "retry_after": round(wait, 3)},
                status=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            offset = _offset(request.query.get("cursor"))
            limit = int(request.query.get("limit", self.page_size))
        except ValueError:
            return _error(400, "bad_request", "cursor or limit is malformed")
        if not 1 <= limit <= MAX_PAGE_SIZE or offset > len(self.listing):
            return _error(400, "bad_request", f"limit must be 1..{MAX_PAGE_SIZE}; cursor as given")
        page = self.listing[offset : offset + limit]
        end = offset + len(page)
        origin = request.url.origin()
        return web.json_response(
            {
                "items": [self._item(clip, origin) for clip in page],
                "next_cursor": _cursor(end) if end < len(self.listing) else None,
            }
        )

    def _item(self, clip: DemoClip, origin: URL) -> dict[str, Any]:
        elapsed = max(0.0, self.clock() - self.started)
        views = clip.base_views + int(clip.views_per_s * elapsed)
        return {
            "id": clip.id,
            "url": str(origin.join(URL(f"/watch/{clip.id}"))),
            "media_url": str(origin.join(URL(f"/media/{clip.media}"))),
            "title": clip.title,
            "caption": clip.caption,
            "author": clip.author,
            "posted_at": (self.started_at - timedelta(seconds=clip.age_s)).isoformat(),
            "stats": {
                "views": views,
                "likes": views // 12,
                "shares": views // 60,
                "comments": views // 90,
            },
        }

    async def media(self, request: web.Request) -> web.StreamResponse:
        path = self.catalogue.media_path(request.match_info["name"])
        if path is None:
            return _error(404, "not_found", "this media is not available")
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    async def watch(self, request: web.Request) -> web.Response:
        clip_id = request.match_info["clip_id"]
        try:
            clip = self.catalogue.clip(clip_id)
        except KeyError:
            return _error(404, "not_found", "no such clip")
        title, caption = escape(clip.title), escape(clip.caption)
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{escape(clip.author)}: {caption}</p>"
            f"<video controls width='480' src='/media/{escape(clip.media)}'></video>"
            "</body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "clips": len(self.listing)})


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError(cursor) from None
    kind, _, number = text.partition(":")
    if kind != "o" or not number.isdigit():
        raise ValueError(cursor)
    return int(number)


def create_platform_app(
    catalogue: DemoCatalogue,
    *,
    min_poll_interval_s: float = 1.0,
    burst: int = 5,
    page_size: int = 3,
    clock: Clock = time.monotonic,
) -> web.Application:
    """The demo platform as an aiohttp application.

    - ``GET /api/v1/clips?cursor=&limit=``: ``{"items": [...], "next_cursor": str | null}``,
      newest first; each item has ``id``, ``url`` (its watch page), ``media_url``, ``title``,
      ``caption``, ``author``, ``posted_at`` and ``stats`` (views, likes, shares, comments).
      Each client (by ``X-Api-Key``, else by address) may make ``burst`` requests at once
      and then one per ``min_poll_interval_s`` (0 turns the limit off); beyond that, ``429``
      with ``Retry-After`` (whole seconds) and ``retry_after`` (exact) in the JSON body.
    - ``GET /media/{name}``: the clip's MP4, or 404; ``GET /watch/{id}``: a small HTML page;
      ``GET /healthz``.
    """
    if page_size < 1 or burst < 1:
        raise ValueError("page_size and burst must be at least 1")
    platform = _Platform(
        catalogue,
        min_poll_interval_s=min_poll_interval_s,
        burst=burst,
        page_size=min(page_size, MAX_PAGE_SIZE),
        clock=clock,
    )
    app = web.Application()
    app.router.add_get("/api/v1/clips", platform.clips)
    app.router.add_get("/media/{name}", platform.media)
    app.router.add_get("/watch/{clip_id}", platform.watch)
    app.router.add_get("/healthz", platform.healthz)
    return app


@contextlib.asynccontextmanager
async def serve_platform(
    catalogue: DemoCatalogue,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    min_poll_interval_s: float = 1.0,
    burst: int = 5,
    page_size: int = 3,
    clock: Clock = time.monotonic,
) -> AsyncIterator[str]:
    """Run the platform inside the current event loop; yields its base URL (``port=0``
    picks a free port)."""
    app = create_platform_app(
        catalogue,
        min_poll_interval_s=min_poll_interval_s,
        burst=burst,
        page_size=page_size,
        clock=clock,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()


def run_demo_platform(
    host: str = "127.0.0.1",
    port: int = 8765,
    root: Path | None = None,
    *,
    announce: Callable[[str], None] = print,
) -> None:
    """Build the demo (or reuse the built one) and serve it until interrupted."""
    catalogue = build_demo(root)

    async def serve() -> None:
        async with serve_platform(catalogue, host=host, port=port) as base_url:
            announce(
                f"demo platform: {base_url}/api/v1/clips "
                f"({len(catalogue.clips)} clips; gallery folder: {catalogue.gallery_dir})"
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
