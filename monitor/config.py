"""Settings, in one place: defaults that run out of the box, overridable from the environment.

Every field can be set as ``LIKENESS_MONITOR_<FIELD>`` (nested with ``__``), so a deployment
changes behaviour through configuration rather than by editing code: a stronger visual
backbone is ``LIKENESS_MONITOR_LIKENESS__VISUAL_EMBEDDER=torchscript:/models/dino.pt``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DecodeSettings", "LikenessSettings", "PipelineSettings", "Settings", "load_settings"]

ROLES = ("crawl", "score", "decide", "notify")


class DecodeSettings(BaseModel):
    """Bounds on what one clip may cost to decode."""

    max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_duration_s: float = Field(default=600.0, gt=0)
    max_pixels: int = Field(default=1920 * 1080, gt=0)
    max_frames: int = Field(default=16, gt=0)
    even_frames: int = Field(default=8, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)


class LikenessSettings(BaseModel):
    """Which models score, on which device, and how frames are cut into regions."""

    device: str | None = None
    visual_embedder: str = "efficientnet-lite0"
    visual_weights: Path | None = None
    face_score_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    min_face_px: int = Field(default=24, ge=8)
    region_grids: tuple[int, ...] = (2, 3)
    region_centre: bool = True
    batch_size: int = Field(default=32, gt=0)
    target_fpr: float = Field(default=0.01, gt=0.0, lt=1.0)
    caption_margin: float = Field(
        default=0.05,
        ge=0.0,
        description="how far below its threshold a score may be and still flag when the "
        "caption names the entity; the caption never flags alone",
    )


class PipelineSettings(BaseModel):
    """The streaming monitor: broker, topics, batching, where state and the gallery live."""

    broker_url: str = "embedded"
    broker_session_timeout_s: float = Field(
        default=10.0, gt=0, description="rebalances wait this long for a member that left"
    )
    broker_heartbeat_interval_s: float = Field(default=1.0, gt=0)
    app_id: str = "likeness-monitor"
    partitions: int = Field(default=4, gt=0)
    state_dir: Path = Path("var/monitor")
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
    demo_platform_url: str | None = Field(
        default=None, description="crawl this demo platform; `up` starts one when no source is set"
    )
    demo_platform_port: int = Field(default=8765, ge=0, lt=65536)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIKENESS_MONITOR_", env_nested_delimiter="__", extra="ignore"
    )

    likeness: LikenessSettings = LikenessSettings()
    decode: DecodeSettings = DecodeSettings()
    pipeline: PipelineSettings = PipelineSettings()


def load_settings() -> Settings:
    return Settings()
