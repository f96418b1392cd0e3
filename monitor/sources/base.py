"""What every crawler is to the pipeline: a named async iterator of observations.

A source knows its platform's API and nothing of Kafka: the pipeline drives ``poll`` on a
timer and sends what it yields. Keeping that seam small lets a source be tested against a
local HTTP server alone, and lets cursor persistence and per-platform backoff be added
around it later without touching the pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from monitor.records import ClipSeen

__all__ = ["Source"]


class Source(ABC):
    """A platform crawler. ``name`` is the platform label on records and metrics."""

    name: str

    @abstractmethod
    def poll(self) -> AsyncIterator[ClipSeen]:
        """One crawl pass: an observation of every clip the listing shows now, to its end.

        Raises ``monitor.errors.SourceError`` when the platform cannot be crawled; clips
        already yielded stay yielded.
        """
