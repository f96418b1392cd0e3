"""The crawl loop shared by every platform: feeds, pages, cursors, dedup, spread, quota.

A platform adapter (a ``Platform``, ``base.py``) only knows its API: which feeds it reads (a
search per gallery entity, a popular listing), how to fetch one page of a feed, and how to
look clips up by id. Everything that makes crawling reliable lives here once, for the real
platforms and the demo's alike:

- each page's observations are handed out as a batch, and only when the consumer comes back
  for more (it has sent them) is the batch committed: clips marked, cursor moved (state.py);
- a clip is emitted once as a discovery; it is emitted again only when it is due for
  re-observation, which is what turns sightings into spread;
- clips that spread fast (views per hour) or were flagged are watched: looked up again every
  ``interval_s`` until their velocity falls below ``cool_views_per_hour``;
- within a batch the fastest-spreading clip comes first, so it is scored first;
- a long rate-limit wait or a spent quota pauses the source until then, keeping its cursors;
- a listing whose cursor comes back within one pass is stopped and read again from the top
  next pass, instead of being paged round in a circle;
- a listed item that makes no valid record is left out alone (``items.py``), not its page.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from monitor.errors import QuotaExhaustedError, RateLimitedError, SourceError, StaleCursorError
from monitor.records import ClipSeen, utcnow
from monitor.retry import RetryPolicy
from monitor.sources.api_client import ApiClient
from monitor.sources.base import Feed, Platform, QuotaSpec, Source
from monitor.sources.crawl_state import CrawlState, FeedState, Observation

__all__ = [
    "Batch",
    "CrawlReport",
    "Crawler",
    "Emit",
    "QuotaMeter",
    "SpreadPolicy",
]

log = logging.getLogger(__name__)

Emit = Callable[[Sequence[ClipSeen]], Awaitable[None]]
"""Sends a batch and returns once it is safely handed on (the broker acknowledged it)."""


@dataclass(frozen=True)
class SpreadPolicy:
    """When a clip is worth looking at again, in views per hour."""

    hot_views_per_hour: float = 1000.0
    cool_views_per_hour: float = 100.0
    interval_s: float = 1800.0
    max_watch_s: float = 7 * 86400.0
    min_age_h: float = 0.25

    def velocity(self, clip: ClipSeen, before: Observation | None) -> float:
        """Views per hour since the last observation, or since posting for a new clip."""
        if clip.views is None:
            return before.velocity if before else 0.0
        if before is not None and before.views is not None:
            hours = (clip.observed_at - before.observed_at).total_seconds() / 3600
            if hours > 0:
                return max(clip.views - before.views, 0) / hours
            return before.velocity
        if clip.posted_at is not None:
            hours = (clip.observed_at - clip.posted_at).total_seconds() / 3600
            return clip.views / max(hours, self.min_age_h)
        return 0.0

    def mark(
        self, clip: ClipSeen, before: Observation | None, flagged: bool, now: datetime
    ) -> Observation:
        velocity = self.velocity(clip, before)
        watch_since = before.watch_since if before else None
        cooled = before.cooled if before else False
        next_due: datetime | None = None
        if watch_since is not None and not cooled:
            watched = (now - watch_since).total_seconds()
            if velocity >= self.cool_views_per_hour and watched < self.max_watch_s:
                next_due = now + timedelta(seconds=self.interval_s)
            else:
                cooled = True
        elif not cooled and (velocity >= self.hot_views_per_hour or flagged):
            watch_since = now
            next_due = now + timedelta(seconds=self.interval_s)
        return Observation(
            clip_key=clip.key,
            clip_id=clip.clip_id,
            observed_at=clip.observed_at,
            views=clip.views,
            velocity=velocity,
            next_due=next_due,
            watch_since=watch_since,
            cooled=cooled,
        )


class QuotaMeter:
    """Counts quota units before each request, so a crawler stops before the platform does."""

    def __init__(
        self,
        state: CrawlState,
        source: str,
        spec: QuotaSpec,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.state, self.source, self.spec, self.clock = state, source, spec, clock

    def day(self) -> str:
        return self.clock().astimezone(self.spec.resets_in).date().isoformat()

    def resets_at(self) -> datetime:
        local = self.clock().astimezone(self.spec.resets_in)
        midnight = datetime.combine(
            local.date() + timedelta(days=1), datetime.min.time(), self.spec.resets_in
        )
        return midnight.astimezone(UTC)

    def used(self) -> int:
        return self.state.quota_used(self.source, self.day())

    def __call__(self, units: int) -> None:
        day = self.day()
        if self.state.quota_used(self.source, day) + units > self.spec.units:
            raise QuotaExhaustedError(
                f"{self.source}: the day's quota of {self.spec.units} units is spent",
                self.resets_at(),
            )
        self.state.spend(self.source, day, units)


@dataclass
class Batch:
    """Observations to send, and what to remember once they are sent."""

    clips: list[ClipSeen]
    marks: list[Observation]
    feed: str | None = None
    feed_state: FeedState | None = None


@dataclass
class CrawlReport:
    """What the last pass did."""

    emitted: int = 0
    skipped: int = 0
    """Listed items left out because they make no valid record."""
    pages: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    paused_until: datetime | None = None


class Crawler(Source):
    """Crawls one platform with persistent state; a ``Source`` for the pipeline.

    ``poll`` yields observations and commits each page once the consumer asks for what comes
    after it; ``run(emit)`` hands whole batches to ``emit`` and commits after it returns.
    ``dry_run`` commits nothing (what ``crawl --dry-run`` prints is what would be sent).
    ``flagged`` returns the keys of clips the decide role has flagged, to watch them.
    """

    def __init__(
        self,
        platform: Platform,
        state: CrawlState,
        *,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        spread: SpreadPolicy | None = None,
        interval_s: float = 300.0,
        max_pages: int = 5,
        max_reobserve: int = 500,
        dry_run: bool = False,
        flagged: Callable[[], Iterable[str]] | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout_s: float = 30.0,
        user_agent: str = "likeness-monitor/0.1",
    ) -> None:
        self.platform = platform
        self.name = platform.name
        self.state = state
        self.retry = retry or RetryPolicy()
        self.spread = spread or SpreadPolicy()
        self.interval_s = interval_s
        self.max_pages = max_pages
        self.max_reobserve = max_reobserve
        self.dry_run = dry_run
        self.flagged = flagged
        self.clock = clock
        self.timeout_s = timeout_s
        self.user_agent = user_agent
        self.quota = QuotaMeter(state, self.name, platform.quota, clock) if platform.quota else None
        self.report = CrawlReport()
        self._client = client
        self._token = platform.token()

    async def poll(self) -> AsyncIterator[ClipSeen]:
        async for batch in self.batches():
            for clip in batch.clips:
                yield clip

    async def run(self, emit: Emit) -> CrawlReport:
        """One pass: every batch to ``emit``, each committed once ``emit`` returns."""
        async for batch in self.batches():
            if batch.clips:
                await emit(batch.clips)
        return self.report

    async def batches(self) -> AsyncIterator[Batch]:
        """One pass as batches; each is committed when the next one is asked for."""
        self.report = CrawlReport()
        self.platform.skipped = 0
        now = self.clock()
        paused = await self.state.run(self.state.paused_until, self.name)
        if paused is not None and paused[0] > now:
            self.report.paused_until = paused[0]
            log.info("%s: paused until %s (%s)", self.name, paused[0].isoformat(), paused[1])
            return
        async with self._session() as client:
            api = ApiClient(
                client,
                self.platform.policy(),
                self.retry,
                name=self.name,
                token=self._token,
                headers={"User-Agent": self.user_agent, **self.platform.headers()},
                spend=self.quota,
            )
            emitted: set[str] = set()
            try:
                for feed in self.platform.feeds():
                    try:
                        async for batch in self._feed(api, feed, emitted):
                            yield batch
                            await self._commit(batch)
                    except StaleCursorError as exc:
                        log.warning("%s: %s; the feed starts again from the top", self.name, exc)
                        await self.state.run(
                            self.state.commit, self.name, feed.key, FeedState(), []
                        )
                        self.report.errors.append(str(exc))
                    except (RateLimitedError, QuotaExhaustedError):
                        raise
                    except SourceError as exc:
                        log.warning("%s: feed %s: %s", self.name, feed.key, exc)
                        self.report.errors.append(f"{feed.key}: {exc}")
                async for batch in self._reobserve(api, emitted):
                    yield batch
                    await self._commit(batch)
            except RateLimitedError as exc:
                await self._pause(datetime.fromtimestamp(exc.resume_at, UTC), str(exc))
            except QuotaExhaustedError as exc:
                await self._pause(exc.resume_at, str(exc))
            finally:
                self.report.requests = api.requests
                self.report.skipped = self.platform.skipped
        if self.report.errors:
            # Other feeds were still read; what was emitted stays emitted and committed.
            raise SourceError(f"{self.name}: {'; '.join(self.report.errors)[:1000]}")

    async def _pause(self, until: datetime, reason: str) -> None:
        log.warning("%s: pausing until %s: %s", self.name, until.isoformat(), reason)
        self.report.paused_until = until
        if not self.dry_run:
            await self.state.run(self.state.pause, self.name, until, reason)

    async def _commit(self, batch: Batch) -> None:
        self.report.emitted += len(batch.clips)
        if not self.dry_run:
            state = self.state
            await state.run(state.commit, self.name, batch.feed, batch.feed_state, batch.marks)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            yield client

    async def _feed(self, api: ApiClient, feed: Feed, emitted: set[str]) -> AsyncIterator[Batch]:
        saved = await self.state.run(self.state.feed, self.name, feed.key)
        fresh = saved.cursor is None
        started = self.clock() if fresh else (saved.pass_started or self.clock())
        cursor = saved.cursor
        cursors = {cursor} if cursor else set()
        for _ in range(self.max_pages):
            page = await self.platform.page(
                api, feed, cursor, saved.since, saved if fresh and saved.since else None
            )
            self.report.pages += 1
            if page.not_modified:
                log.info("%s: %s has not changed", self.name, feed.key)
                return
            etag = page.etag if fresh else saved.etag
            modified = page.last_modified if fresh else saved.last_modified
            if page.next_cursor:
                after = FeedState(page.next_cursor, started, saved.since, etag, modified)
            else:
                after = FeedState(None, None, started, etag, modified)
            clips, marks = await self._select(page.clips, emitted)
            yield Batch(clips, marks, feed.key, after)
            saved, cursor, fresh = after, page.next_cursor, False
            if cursor is None:
                return
            if cursor in cursors:
                raise StaleCursorError(f"{feed.key}: the listing cursor repeats ({cursor[:100]})")
            cursors.add(cursor)

    async def _select(
        self, clips: Sequence[ClipSeen], emitted: set[str], *, due_only: bool = False
    ) -> tuple[list[ClipSeen], list[Observation]]:
        """The clips to emit: new ones and those due again, fastest-spreading first."""
        now = self.clock()
        unique = list({clip.key: clip for clip in clips}.values())
        before = await self.state.run(self.state.observations, [clip.key for clip in unique])
        flagged = set(await self.state.run(self.flagged)) if self.flagged is not None else set()
        chosen: list[tuple[ClipSeen, Observation]] = []
        for clip in unique:
            if clip.key in emitted:
                continue
            old = before.get(clip.key)
            due = old is not None and old.next_due is not None and old.next_due <= now
            if old is not None and not due and not due_only:
                continue
            chosen.append((clip, self.spread.mark(clip, old, clip.key in flagged, now)))
            emitted.add(clip.key)
        chosen.sort(key=lambda pair: pair[1].velocity, reverse=True)
        return [clip for clip, _ in chosen], [mark for _, mark in chosen]

    async def _reobserve(self, api: ApiClient, emitted: set[str]) -> AsyncIterator[Batch]:
        size = self.platform.lookup_batch
        if size <= 0:
            return
        now = self.clock()
        await self._watch_flagged(now)
        due = [
            o
            for o in await self.state.run(self.state.due, self.name, now, self.max_reobserve)
            if o.clip_key not in emitted
        ]
        for start in range(0, len(due), size):
            chunk = due[start : start + size]
            found = await self.platform.lookup(api, [o.clip_id for o in chunk])
            clips, marks = await self._select(found, emitted, due_only=True)
            seen = {clip.key for clip in found}
            # Gone (deleted, made private): stop asking for them.
            marks += [
                Observation(
                    o.clip_key,
                    o.clip_id,
                    o.observed_at,
                    o.views,
                    o.velocity,
                    None,
                    o.watch_since,
                    True,
                )
                for o in chunk
                if o.clip_key not in seen
            ]
            yield Batch(clips, marks)

    async def _watch_flagged(self, now: datetime) -> None:
        """Flagged clips not yet watched become due now (once; they stop when they cool)."""
        if self.flagged is None or self.dry_run:
            return
        flagged = await self.state.run(self.flagged)
        keys = [key for key in flagged if key.startswith(f"{self.name}:")]
        start = [
            Observation(o.clip_key, o.clip_id, o.observed_at, o.views, o.velocity, now, now, False)
            for o in (await self.state.run(self.state.observations, keys)).values()
            if o.watch_since is None and not o.cooled
        ]
        if start:
            await self.state.run(self.state.commit, self.name, None, None, start)
