"""Which platforms this deployment crawls: those whose credentials are configured.

A platform without credentials is skipped with one log line that names the setting to fill
in, never a crash and never the value of a secret, so a deployment can be brought up with any
subset of platforms and the demo platform when it has none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from monitor.errors import SourceError
from monitor.retry import RetryPolicy
from monitor.sources.base import Platform
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler, SpreadPolicy
from monitor.sources.queries import Query, load_gallery_entities, queries_for
from monitor.sources.settings import SourcesSettings

__all__ = ["PLATFORMS", "build_crawlers", "configured_platforms", "crawler_for"]

log = logging.getLogger(__name__)

PLATFORMS = ("youtube", "reddit", "tiktok", "x", "rss")
_ENV = "LIKENESS_MONITOR_SOURCES__"


def _skip(name: str, missing: str) -> None:
    log.info("%s: not crawled: %s is not set", name, missing)


def configured_platforms(
    config: SourcesSettings, queries: Sequence[Query], names: Iterable[str] = PLATFORMS
) -> list[tuple[Platform, float, int]]:
    """The platforms with credentials, each with its pass interval and pages per feed."""
    from monitor.sources.reddit import RedditPlatform
    from monitor.sources.rss import RssPlatform
    from monitor.sources.tiktok import TikTokPlatform
    from monitor.sources.x import XPlatform
    from monitor.sources.youtube import YouTubePlatform

    built: list[tuple[Platform, float, int]] = []
    for name in names:
        if name not in PLATFORMS:
            raise SourceError(f"unknown source {name!r}; known: {', '.join(PLATFORMS)}")
        platform: Platform | None = None
        if name == "youtube":
            yt = config.youtube
            if yt.api_key is None:
                _skip(name, f"{_ENV}YOUTUBE__API_KEY")
                continue
            platform = YouTubePlatform(
                yt.api_key.get_secret_value(),
                queries,
                base_url=yt.base_url,
                region_codes=yt.region_codes,
                daily_quota=yt.daily_quota,
            )
            built.append((platform, yt.interval_s, yt.max_pages))
        elif name == "reddit":
            rd = config.reddit
            if rd.client_id is None or rd.client_secret is None:
                _skip(name, f"{_ENV}REDDIT__CLIENT_ID / {_ENV}REDDIT__CLIENT_SECRET")
                continue
            platform = RedditPlatform(
                rd.client_id.get_secret_value(),
                rd.client_secret.get_secret_value(),
                queries,
                base_url=rd.base_url,
                auth_url=rd.auth_url,
                subreddits=rd.subreddits,
                user_agent=rd.user_agent,
            )
            built.append((platform, rd.interval_s, rd.max_pages))
        elif name == "tiktok":
            tt = config.tiktok
            if tt.client_key is None or tt.client_secret is None:
                _skip(name, f"{_ENV}TIKTOK__CLIENT_KEY / {_ENV}TIKTOK__CLIENT_SECRET")
                continue
            platform = TikTokPlatform(
                tt.client_key.get_secret_value(),
                tt.client_secret.get_secret_value(),
                queries,
                base_url=tt.base_url,
                region_codes=tt.region_codes,
                days=tt.days,
                daily_requests=tt.daily_requests,
            )
            built.append((platform, tt.interval_s, tt.max_pages))
        elif name == "x":
            xs = config.x
            if xs.bearer_token is None:
                _skip(name, f"{_ENV}X__BEARER_TOKEN")
                continue
            platform = XPlatform(
                xs.bearer_token.get_secret_value(),
                queries,
                base_url=xs.base_url,
                broad_queries=xs.broad_queries,
            )
            built.append((platform, xs.interval_s, xs.max_pages))
        elif name == "rss":
            if not config.rss.feeds:
                _skip(name, f"{_ENV}RSS__FEEDS")
                continue
            built.append((RssPlatform(config.rss.feeds), config.rss.interval_s, 1))
    return built


def build_crawlers(
    config: SourcesSettings,
    gallery: Path | None,
    state: CrawlState,
    *,
    names: Iterable[str] = PLATFORMS,
    dry_run: bool = False,
    flagged: Callable[[], Iterable[str]] | None = None,
) -> list[Crawler]:
    """A crawler per configured platform, searching for the entities of the ``gallery`` folder."""
    queries = queries_for(load_gallery_entities(gallery), config.max_queries)
    return [
        crawler_for(
            config,
            state,
            platform,
            interval_s=interval_s,
            max_pages=max_pages,
            dry_run=dry_run,
            flagged=flagged,
        )
        for platform, interval_s, max_pages in configured_platforms(config, queries, names)
    ]


def crawler_for(
    config: SourcesSettings,
    state: CrawlState,
    platform: Platform,
    *,
    interval_s: float,
    max_pages: int,
    spread: SpreadPolicy | None = None,
    dry_run: bool = False,
    flagged: Callable[[], Iterable[str]] | None = None,
) -> Crawler:
    """The crawler for one platform, with the configured retries, timeout and spread policy
    (``spread`` replaces the last for a platform that watches its clips differently)."""
    if spread is None:
        spread = SpreadPolicy(
            hot_views_per_hour=config.hot_views_per_hour,
            cool_views_per_hour=config.cool_views_per_hour,
            interval_s=config.reobserve_interval_s,
            max_watch_s=config.reobserve_max_s,
        )
    retry = RetryPolicy(
        retries=config.retries, backoff_s=config.backoff_s, max_wait_s=config.max_wait_s
    )
    return Crawler(
        platform,
        state,
        retry=retry,
        spread=spread,
        interval_s=interval_s,
        max_pages=max_pages,
        dry_run=dry_run,
        flagged=flagged,
        timeout_s=config.timeout_s,
    )
