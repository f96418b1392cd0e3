"""What a crawler must remember across restarts, in SQLite: cursors, clips emitted, spread, quota.

A crawl is at-least-once by construction: a page's observations are emitted first, and only
then, in one transaction, are its clips marked as emitted and the feed's cursor moved past it.
A worker killed between the two re-fetches that page and re-emits it (the record keys let
consumers drop the repeat); a worker killed anywhere else resumes at the page it had not
finished, so no page is skipped. Faust tables are not used for this (DESIGN.md: they lose keys
after a restart on the embedded broker).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitor.storage import Database, FeedOffsets, Migration, postgresql_ddl

__all__ = ["MIGRATIONS", "POSTGRESQL_MIGRATIONS", "CrawlState", "FeedState", "Observation"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    source TEXT NOT NULL,
    feed TEXT NOT NULL,
    cursor TEXT,
    pass_started TEXT,
    since TEXT,
    etag TEXT,
    last_modified TEXT,
    PRIMARY KEY (source, feed)
);
CREATE TABLE IF NOT EXISTS clips (
    clip_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    first_emitted TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    views INTEGER,
    velocity REAL NOT NULL DEFAULT 0,
    next_due TEXT,
    watch_since TEXT,
    cooled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS clips_due ON clips (source, next_due);
CREATE TABLE IF NOT EXISTS quota (
    source TEXT NOT NULL,
    day TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (source, day)
);
CREATE TABLE IF NOT EXISTS paused (
    source TEXT PRIMARY KEY,
    until TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flagged (
    clip_key TEXT PRIMARY KEY
);
"""

_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    source TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

MIGRATIONS = (
    Migration("feeds, clips, quota, pauses, flagged clips, offsets", _SCHEMA),
    Migration("leases: one active crawler per source among replicas", _LEASES),
)
"""The schema of the file, in order (``monitor.storage``): append, never edit one released."""

POSTGRESQL_MIGRATIONS = (
    Migration(MIGRATIONS[0].summary, postgresql_ddl(_SCHEMA, collate_c=["clips.next_due"])),
    Migration(MIGRATIONS[1].summary, postgresql_ddl(_LEASES)),
)
"""The same store in PostgreSQL (``monitor.storage.translate``): append, never edit."""


@dataclass(frozen=True)
class FeedState:
    """Where a feed's crawl stands.

    ``cursor`` is the next page of an unfinished pass (``None``: the next pass starts at the
    top); ``since`` is when the last finished pass began, so the next one can ask only for
    newer clips; ``etag``/``last_modified`` validate the first page of the next pass.
    """

    cursor: str | None = None
    pass_started: datetime | None = None
    since: datetime | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Observation:
    """The last counts a crawler emitted for a clip, and when (if ever) to look again."""

    clip_key: str
    clip_id: str
    observed_at: datetime
    views: int | None
    velocity: float
    next_due: datetime | None
    watch_since: datetime | None
    cooled: bool


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class CrawlState(FeedOffsets):
    """The state of every source a worker crawls (a SQLite file, or a PostgreSQL schema);
    safe from threads and the event loop.

    It also keeps the clips flagged anywhere in the pipeline (the crawl role follows the
    ``alerts`` topic into it), so that they are watched while they spread.
    """

    def __init__(self, where: Path | Database) -> None:
        super().__init__(where, MIGRATIONS, postgresql=POSTGRESQL_MIGRATIONS)

    # --- flagged clips --------------------------------------------------------------------

    def mark_flagged(self, clip_key: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO flagged VALUES (?) ON CONFLICT DO NOTHING", (clip_key,))

    def flagged_clips(self) -> list[str]:
        with self._read() as db:
            rows = db.execute("SELECT clip_key FROM flagged ORDER BY clip_key").fetchall()
        return [str(row[0]) for row in rows]

    # --- leases ---------------------------------------------------------------------------

    def hold_lease(self, source: str, holder: str, now: float, ttl_s: float) -> bool:
        """Take or renew ``source``'s lease for ``holder`` until ``now + ttl_s``: True when
        ``holder`` has it (it had it, or nobody did, or the last holder's has expired). One
        statement, so two replicas asking at once cannot both get it."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                "holder=excluded.holder, expires_at=excluded.expires_at "
                "WHERE leases.holder=excluded.holder OR leases.expires_at < ?",
                (source, holder, now + ttl_s, now),
            )
            return cursor.rowcount == 1

    def lease_holder(self, source: str, now: float) -> str | None:
        """Who holds ``source``'s lease now, if anyone."""
        with self._read() as db:
            row = db.execute(
                "SELECT holder FROM leases WHERE source=? AND expires_at >= ?", (source, now)
            ).fetchone()
        return None if row is None else str(row[0])

    # --- feeds ----------------------------------------------------------------------------

    def feed(self, source: str, feed: str) -> FeedState:
        with self._read() as db:
            row = db.execute(
                "SELECT cursor, pass_started, since, etag, last_modified FROM feeds "
                "WHERE source=? AND feed=?",
                (source, feed),
            ).fetchone()
        if row is None:
            return FeedState()
        return FeedState(row[0], _time(row[1]), _time(row[2]), row[3], row[4])

    def commit(
        self, source: str, feed: str | None, state: FeedState | None, marks: Sequence[Observation]
    ) -> None:
        """Atomically: these clips were emitted, and the feed now stands at ``state``."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO clips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(clip_key) DO UPDATE SET observed_at=excluded.observed_at, "
                "views=excluded.views, velocity=excluded.velocity, next_due=excluded.next_due, "
                "watch_since=excluded.watch_since, cooled=excluded.cooled",
                [
                    (
                        mark.clip_key,
                        source,
                        mark.clip_id,
                        mark.observed_at.isoformat(),
                        mark.observed_at.isoformat(),
                        mark.views,
                        mark.velocity,
                        _text(mark.next_due),
                        _text(mark.watch_since),
                        int(mark.cooled),
                    )
                    for mark in marks
                ],
            )
            if feed is not None and state is not None:
                db.execute(
                    "INSERT INTO feeds VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (source, feed) DO UPDATE SET cursor=excluded.cursor, "
                    "pass_started=excluded.pass_started, since=excluded.since, "
                    "etag=excluded.etag, last_modified=excluded.last_modified",
                    (
                        source,
                        feed,
                        state.cursor,
                        _text(state.pass_started),
                        _text(state.since),
                        state.etag,
                        state.last_modified,
                    ),
                )

    # --- clips ----------------------------------------------------------------------------

    def observations(self, keys: Iterable[str]) -> dict[str, Observation]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Observation] = {}
        with self._read() as db:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = db.execute(
                    "SELECT clip_key, clip_id, observed_at, views, velocity, next_due, "
                    f"watch_since, cooled FROM clips WHERE clip_key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for row in rows:
                    found[row[0]] = _observation(row)
        return found

    def due(self, source: str, now: datetime, limit: int) -> list[Observation]:
        """Watched clips whose next re-observation is due, the longest overdue first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT clip_key, clip_id, observed_at, views, velocity, next_due, watch_since, "
                "cooled FROM clips WHERE source=? AND next_due IS NOT NULL AND next_due <= ? "
                "ORDER BY next_due LIMIT ?",
                (source, now.isoformat(), limit),
            ).fetchall()
        return [_observation(row) for row in rows]

    def emitted(self, source: str) -> int:
        with self._read() as db:
            row = db.execute("SELECT count(*) FROM clips WHERE source=?", (source,))
            return int(row.fetchone()[0])

    # --- quota and pauses ------------------------------------------------------------------

    def quota_used(self, source: str, day: str) -> int:
        with self._read() as db:
            row = db.execute(
                "SELECT used FROM quota WHERE source=? AND day=?", (source, day)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def spend(self, source: str, day: str, units: int) -> int:
        """Count ``units`` against the day's quota; returns the day's total."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO quota VALUES (?, ?, ?) "
                "ON CONFLICT(source, day) DO UPDATE SET used=quota.used+excluded.used",
                (source, day, units),
            )
            row = db.execute(
                "SELECT used FROM quota WHERE source=? AND day=?", (source, day)
            ).fetchone()
        return int(row[0])

    def pause(self, source: str, until: datetime, reason: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO paused VALUES (?, ?, ?) ON CONFLICT (source) "
                "DO UPDATE SET until=excluded.until, reason=excluded.reason",
                (source, until.isoformat(), reason[:500]),
            )

    def paused_until(self, source: str) -> tuple[datetime, str] | None:
        with self._read() as db:
            row = db.execute(
                "SELECT until, reason FROM paused WHERE source=?", (source,)
            ).fetchone()
        return None if row is None else (datetime.fromisoformat(row[0]), str(row[1]))


def _observation(row: Sequence[object]) -> Observation:
    return Observation(
        clip_key=str(row[0]),
        clip_id=str(row[1]),
        observed_at=datetime.fromisoformat(str(row[2])),
        views=None if row[3] is None else int(str(row[3])),
        velocity=float(str(row[4])),
        next_due=_time(None if row[5] is None else str(row[5])),
        watch_since=_time(None if row[6] is None else str(row[6])),
        cooled=bool(row[7]),
    )
