"""Settings, in one place: defaults that run out of the box, overridable from the environment.

Every field can be set as ``LIKENESS_MONITOR_<FIELD>`` (nested with ``__``), so a deployment
changes behaviour through configuration rather than by editing code: a stronger visual
backbone is ``LIKENESS_MONITOR_LIKENESS__VISUAL_EMBEDDER=torchscript:/models/dino.pt``.

Settings carry secrets (webhook URLs, passwords, API keys), and pydantic's errors quote the
input they refused: a model validator's error quotes every field given to the model. So no
model here puts its input in an error (``hide_input_in_errors``), and ``load_settings``
re-raises a ``ConfigError`` that names only where and what, with no chained traceback.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from monitor.errors import ConfigError
from monitor.likeness.settings import LikenessSettings
from monitor.media.settings import DecodeSettings

__all__ = [
    "DecodeSettings",
    "LikenessSettings",
    "NotifySettings",
    "PipelineSettings",
    "ReviewSettings",
    "Settings",
    "SourcesSettings",
    "describe_errors",
    "load_settings",
]

ROLES = ("crawl", "score", "decide", "notify", "review")


class _Section(BaseModel):
    """A group of settings whose validation errors never quote what they were given."""

    model_config = ConfigDict(hide_input_in_errors=True)


class PipelineSettings(_Section):
    """The streaming monitor: broker, topics, batching, where state and the gallery live."""

    broker_url: str = "embedded"
    broker_session_timeout_s: float = Field(
        default=10.0, gt=0, description="rebalances wait this long for a member that left"
    )
    broker_heartbeat_interval_s: float = Field(default=1.0, gt=0)
    app_id: str = "likeness-monitor"
    partitions: int = Field(default=4, gt=0)
    state_dir: Path = Path("var/monitor")
    shared_dir: Path | None = Field(
        default=None,
        description="where files that several roles use live: evidence thumbnails and clip "
        "fingerprints, written by score, served by notify and review, filed by review; a "
        "volume all three mount when they run apart (default: state_dir)",
    )
    gallery: Path | None = Field(
        default=None, description="a built gallery; default: the demo gallery, built on start"
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, gt=0, lt=65536)
    batch_size: int = Field(default=8, gt=0)
    batch_within_s: float = Field(default=1.0, gt=0)
    decode_workers: int = Field(default=2, gt=0)
    fetch_concurrency: int = Field(default=8, gt=0)
    fetch_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    fetch_timeout_s: float = Field(default=60.0, gt=0)
    crawl_interval_s: float = Field(default=5.0, gt=0)
    alert_resend_window_s: float = Field(
        default=86_400.0,
        gt=0,
        description="decide keeps the alerts it sent this long and sends them again to a new "
        "broker (the embedded one restarts empty); consumers drop the repeats",
    )
    demo_platform_url: str | None = Field(
        default=None, description="crawl this demo platform; `up` starts one when no source is set"
    )
    demo_platform_port: int = Field(default=8765, ge=0, lt=65536)
    fetch_allow: tuple[str, ...] = Field(
        default=(),
        description="networks media may be fetched from although not public (e.g. "
        "127.0.0.1/32 for a local test platform); everything else private is refused",
    )
    media_resolver: tuple[str, ...] = Field(
        default=(),
        description="a command that prints the media URL of a clip page, as a JSON list of "
        'arguments with {url}, {platform} and {clip_id}, e.g. ["yt-dlp", "--get-url", "-f", '
        '"best[height<=720]", "--", "{url}"]; run for media_resolver_platforms',
    )
    media_resolver_platforms: tuple[str, ...] = Field(
        default=("youtube", "tiktok"),
        description="platforms whose listings carry no video file (YouTube: a thumbnail)",
    )
    media_resolver_timeout_s: float = Field(default=30.0, gt=0)

    @property
    def shared_root(self) -> Path:
        return self.shared_dir or self.state_dir


class NotifySettings(_Section):
    """Where alerts go (the console, Slack, a webhook), and how hard the notifier tries.

    URLs and secrets are ``SecretStr``: a Slack webhook URL grants posting to a channel, so
    none of them is ever printed, logged or put in a metric or an error message.
    """

    console: bool = Field(default=True, description="print each alert on standard output")
    slack_webhook_url: SecretStr | None = None
    webhook_url: SecretStr | None = None
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the generic webhook's signature"
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:6066",
        description="where receivers reach this monitor's web server (evidence thumbnails)",
    )
    evidence_images: bool = Field(
        default=True, description="put the evidence thumbnail in Slack messages"
    )
    evidence_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of the signed, expiring evidence URLs; default: a random key "
        "kept in shared_dir/evidence/.url-key",
    )
    evidence_url_ttl_s: float = Field(
        default=7 * 86400.0, gt=0, description="how long an evidence link keeps working"
    )
    timeout_s: float = Field(default=10.0, gt=0)
    flood_max_per_window: int = Field(
        default=10, gt=0, description="alerts per entity per window before a summary replaces them"
    )
    flood_window_s: float = Field(default=600.0, gt=0)
    flush_interval_s: float = Field(default=5.0, gt=0)
    retry_inline_attempts: int = Field(
        default=3, gt=0, description="tries before an alert is parked on the retry topic"
    )
    retry_backoff_s: float = Field(default=1.0, gt=0)
    retry_backoff_max_s: float = Field(default=300.0, gt=0)
    retry_inline_max_wait_s: float = Field(
        default=10.0, ge=0, description="a longer wait (a Retry-After, say) parks the alert"
    )
    retry_give_up_after_s: float = Field(
        default=86400.0, gt=0, description="a parked alert older than this goes to deadletter"
    )

    @model_validator(mode="after")
    def _webhook_is_signed(self) -> NotifySettings:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_url needs webhook_secret: receivers verify the signature")
        return self


class ReviewSettings(_Section):
    """Who may use the review page (``/review``): a bearer token, or basic auth, or both.

    With neither configured the page answers 503 and says what to set: alerts name people and
    carry attacker-chosen text, so the page is never open by default, not even on loopback
    (a reverse proxy on the same host would make every visitor local).
    """

    token: SecretStr | None = Field(default=None, description="Authorization: Bearer <token>")
    username: str | None = None
    password: SecretStr | None = None
    page_size: int = Field(default=200, gt=0, le=5000, description="alerts listed per page")
    recalibrate_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="rebuild the gallery at most this often after dismissals (a rebuild embeds "
        "only the files added since the last one)",
    )

    @model_validator(mode="after")
    def _basic_auth_is_whole(self) -> ReviewSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("review username and password go together")
        return self

    @property
    def configured(self) -> bool:
        return self.token is not None or self.password is not None


class _Platform(_Section):
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


class SourcesSettings(_Section):
    """Real platforms to crawl. A platform without credentials is skipped (one log line).

    Credentials are ``SecretStr``: never printed or logged. Base URLs are overridable so that
    tests point them at servers on 127.0.0.1.
    """

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIKENESS_MONITOR_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,
    )

    likeness: LikenessSettings = LikenessSettings()
    decode: DecodeSettings = DecodeSettings()
    pipeline: PipelineSettings = PipelineSettings()
    sources: SourcesSettings = SourcesSettings()
    notify: NotifySettings = NotifySettings()
    review: ReviewSettings = ReviewSettings()


def load_settings() -> Settings:
    """The settings from the environment; a ``ConfigError`` naming each bad setting and what
    is wrong with it, never its value, when they do not validate."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None
    except SettingsError as exc:
        # pydantic-settings says which field it could not parse; what it chained may quote it.
        raise ConfigError(f"invalid settings: {exc}") from None


def describe_errors(exc: ValidationError) -> str:
    """One line per error: the setting's environment name and pydantic's message, no input."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = "__".join(str(part) for part in error["loc"]).upper()
        lines.append(
            f"  LIKENESS_MONITOR_{where}: {error['msg']}" if where else f"  {error['msg']}"
        )
    return "invalid settings:\n" + "\n".join(lines)
