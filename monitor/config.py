"""Settings, composed in one place: defaults that run out of the box, overridable from the
environment.

Each package declares its own group (``media``'s ``DecodeSettings``, ``likeness``'s
``LikenessSettings``, ``sources``, ``alerts`` and ``review`` theirs) and reads only that; this
module composes them with the pipeline's own under one ``Settings``, so no package below the
pipeline reads the whole application's configuration.

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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from monitor.alerts.settings import NotifySettings
from monitor.errors import ConfigError
from monitor.likeness.settings import LikenessSettings
from monitor.media.settings import DecodeSettings
from monitor.review.settings import ReviewSettings
from monitor.sources.settings import SourcesSettings
from monitor.storage import Database, state_location

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
    state_url: SecretStr | None = Field(
        default=None,
        description="a PostgreSQL server for the roles' state (postgresql://user:pass@host/db): "
        "every replica of decide, notify, crawl, review and score shares it, so partitions can "
        "move between hosts; unset, each store is a SQLite file in state_dir (one host)",
    )
    state_namespace: str = Field(
        default="likeness",
        pattern=r"^[a-z_][a-z0-9_]{0,40}$",
        description="each store is the schema <namespace>_<store> at state_url: monitors that "
        "share one database keep apart by namespace",
    )
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
    story_window_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="a flagged clip joins the story of a clip it copies if that story had a "
        "copy seen within this long; a copy of a story quiet for longer starts a new one",
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

    def store(self, name: str) -> Path | Database:
        """Where the store ``name`` lives: ``state_dir/<name>.sqlite3``, or its schema at
        ``state_url``."""
        return state_location(
            name,
            state_dir=self.state_dir,
            state_url=None if self.state_url is None else self.state_url.get_secret_value(),
            namespace=self.state_namespace,
        )


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
