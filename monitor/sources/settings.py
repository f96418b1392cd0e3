"""Which platforms to crawl, with what credentials and how politely, as settings
(``monitor.config`` composes them under ``sources``). Validation errors never quote their
input: these carry API keys.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "RedditSettings",
    "RssSettings",
    "SourcesSettings",
    "TikTokSettings",
    "XSettings",
    "YouTubeSettings",
]


class _Platform(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    interval_s: float = Field(default=300.0, gt=0, description="seconds between crawl passes")
    max_pages: int = Field(default=5, gt=0, description="pages per feed per pass")


class YouTubeSettings(_Platform):
    api_key: SecretStr | None = None
    base_url: str = "https://www.googleapis.com/youtube/v3"
    daily_quota: int = Field(default=10_000, gt=0, description="units; search.list costs 100")
    interval_s: float = Field(default=1800.0, gt=0)
    region_codes: tuple[str, ...] = ("US",)


class RedditSettings(_Platform):
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    base_url: str = "https://oauth.reddit.com"
    auth_url: str = "https://www.reddit.com"
    user_agent: str = "server:likeness-monitor:0.1 (brand protection)"
    subreddits: tuple[str, ...] = ("videos", "popular")


class TikTokSettings(_Platform):
    client_key: SecretStr | None = None
    client_secret: SecretStr | None = None
    base_url: str = "https://open.tiktokapis.com"
    daily_requests: int = Field(default=1000, gt=0)
    region_codes: tuple[str, ...] = ("US", "GB")
    days: int = Field(default=2, gt=0, le=30, description="how far back a query reaches")


class XSettings(_Platform):
    bearer_token: SecretStr | None = None
    base_url: str = "https://api.x.com"
    broad_queries: tuple[str, ...] = ("has:videos -is:retweet -is:reply lang:en",)


class RssSettings(_Platform):
    feeds: tuple[str, ...] = Field(
        default=(),
        description="RSS/Atom URLs, e.g. https://www.youtube.com/feeds/videos.xml?channel_id=...",
    )


class SourcesSettings(BaseModel):
    """Real platforms to crawl. A platform without credentials is skipped (one log line).

    Credentials are ``SecretStr``: never printed or logged. Base URLs are overridable so that
    tests point them at servers on 127.0.0.1.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    youtube: YouTubeSettings = YouTubeSettings()
    reddit: RedditSettings = RedditSettings()
    tiktok: TikTokSettings = TikTokSettings()
    x: XSettings = XSettings()
    rss: RssSettings = RssSettings()
    max_queries: int = Field(default=20, gt=0, description="gallery queries per platform pass")
    hot_views_per_hour: float = Field(default=1000.0, ge=0, description="start re-observing")
    cool_views_per_hour: float = Field(default=100.0, ge=0, description="stop re-observing")
    reobserve_interval_s: float = Field(default=1800.0, gt=0)
    reobserve_max_s: float = Field(default=7 * 86400.0, gt=0)
    retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=1.0, gt=0)
    max_wait_s: float = Field(
        default=120.0, gt=0, description="a longer rate-limit wait pauses the source instead"
    )
    timeout_s: float = Field(default=30.0, gt=0)
