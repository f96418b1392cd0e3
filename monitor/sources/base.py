"""The two interfaces of the crawlers: ``Source`` to the pipeline, ``Platform`` to the crawler.

A source is what every crawler is to the pipeline: a named async iterator of observations. It
knows its platform's API and nothing of Kafka: the pipeline drives ``poll`` on a timer and sends
what it yields, so a source can be tested against a local HTTP server alone.

A platform is one API as the crawl loop (``crawler.py``) needs it: its feeds, one page of a
feed, a lookup of clips by id, and how to read its answers (``ResponsePolicy``). Every platform,
the demo's included (``monitor/demo/adapter.py``), is a ``Platform`` driven by the one
``Crawler``, which is the ``Source`` the pipeline polls; cursors, dedup, spread, quota, retries
and rate limits are the crawler's and its ``ApiClient``'s, never an adapter's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from monitor.records import ClipSeen
from monitor.sources.api_client import ApiClient, BearerToken, ResponsePolicy
from monitor.sources.crawl_state import FeedState
from monitor.sources.items import Item, valid_clips

__all__ = ["Feed", "Page", "Platform", "QuotaSpec", "Source"]


class Source(ABC):
    """A platform crawler. ``name`` is the platform label on records and metrics."""

    name: str

    @abstractmethod
    def poll(self) -> AsyncIterator[ClipSeen]:
        """One crawl pass: an observation of every clip the listing shows now, to its end.

        Raises ``monitor.errors.SourceError`` when the platform cannot be crawled; clips
        already yielded stay yielded.
        """


@dataclass(frozen=True)
class Feed:
    """One listing a platform is read from: ``key`` names it in the crawl state."""

    key: str
    kind: str
    query: Any = None


@dataclass(frozen=True)
class Page:
    clips: list[ClipSeen]
    next_cursor: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


@dataclass(frozen=True)
class QuotaSpec:
    """A daily allowance of ``units``, renewed at midnight in ``resets_in``."""

    units: int
    resets_in: tzinfo = UTC


class Platform(ABC):
    """A platform's API, as the crawler needs it. ``name`` labels records and metrics."""

    name: str
    lookup_batch: int = 0
    """How many clips ``lookup`` takes at once; 0: this platform cannot look clips up."""
    quota: QuotaSpec | None = None
    skipped: int = 0
    """Listed items left out in this pass because they make no valid record (``clips``); the
    crawler sets it to 0 as each pass begins and reports it when the pass ends."""

    def clips(
        self, items: Iterable[Item], build: Callable[[Item], ClipSeen | None]
    ) -> list[ClipSeen]:
        """The records ``build`` makes of ``items``; a malformed item is left out and counted
        in ``skipped``, and the rest of its page still counts (``items.valid_clips``)."""
        clips, skipped = valid_clips(self.name, items, build)
        self.skipped += skipped
        return clips

    def policy(self) -> ResponsePolicy:
        return ResponsePolicy()

    def token(self) -> BearerToken | None:
        return None

    def headers(self) -> dict[str, str]:
        return {}

    @abstractmethod
    def feeds(self) -> list[Feed]:
        """The listings to read on every pass."""

    @abstractmethod
    async def page(
        self,
        api: ApiClient,
        feed: Feed,
        cursor: str | None,
        since: datetime | None,
        validators: FeedState | None,
    ) -> Page:
        """One page of ``feed`` at ``cursor`` (``None``: the first). ``since``: when the last
        full pass began, for platforms that can filter by time; ``validators``: the first
        page's ETag / Last-Modified from the last pass, for a conditional request."""

    async def lookup(self, api: ApiClient, clip_ids: Sequence[str]) -> list[ClipSeen]:
        """Fresh observations of these clips (gone ones are left out)."""
        return []
