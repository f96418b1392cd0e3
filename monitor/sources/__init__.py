"""Crawlers: platform APIs in, ``ClipSeen`` observations out, nothing of Kafka."""

from __future__ import annotations

from monitor.sources.base import Platform, Source

__all__ = ["Platform", "Source"]
