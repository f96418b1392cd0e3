"""Crawlers: platform APIs in, ``ClipSeen`` observations out, nothing of Kafka."""

from __future__ import annotations

from monitor.sources.base import Source
from monitor.sources.demo import DemoPlatformSource

__all__ = ["DemoPlatformSource", "Source"]
