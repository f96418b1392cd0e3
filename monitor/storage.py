"""The SQLite plumbing that every per-host store shares (scores and alerts, crawl state,
notifier deliveries): one connection in WAL mode, serialised by a lock so that the event loop
and worker threads can both use it, and explicit transactions for writes.

A store that keeps something only meaningful on one broker (a feed's offsets, the notifier's
parked alerts that the broker's retry topic also holds) also remembers which broker that was,
by cluster id: the embedded broker forgets every topic when it restarts while these files
survive, and positions of the old broker applied to the new one hide its first records.

Every store's file carries a schema version (``PRAGMA user_version``): each store declares its
migrations in order, migration 1 being its tables as first created, and opening a file runs
those it has not had yet, all in one transaction with the new version, so that a file is at
one version or the next, never between. A file made before versions (``user_version`` 0) that
already has migration 1's tables and indexes is taken as version 1; one without runs migration
1, whose ``CREATE ... IF NOT EXISTS`` also completes a file from before a table was added, as
opening always did. A file whose version is newer than the code's newest is refused
(``StoreVersionError``) before anything is written to it: a newer monitor wrote it, and this
one would misread it.

A schema change is a new ``Migration`` at the end of the store's list, never an edit of one
already released: files on disk have run those. The tables of this module (``broker``,
``offsets``) are part of each store's migration 1; a change to them is a migration of every
store that has them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.errors import StoreVersionError

__all__ = ["FeedOffsets", "Migration", "SqliteStore"]

log = logging.getLogger(__name__)

_BROKER_SCHEMA = """
CREATE TABLE IF NOT EXISTS broker (
    only INTEGER PRIMARY KEY CHECK (only = 0),
    cluster_id TEXT NOT NULL
);
"""

_OFFSETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


@dataclass(frozen=True)
class Migration:
    """One step of a store's schema: ``sql`` (statements separated by ``;``), then ``run`` if
    given, both inside the transaction that records the step's version."""

    summary: str
    sql: str = ""
    run: Callable[[sqlite3.Connection], None] | None = None

    def apply(self, db: sqlite3.Connection) -> None:
        # Statement by statement: executescript would commit the transaction first.
        for statement in _statements(self.sql):
            db.execute(statement)
        if self.run is not None:
            self.run(db)


def _statements(script: str) -> Iterator[str]:
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):  # not a ';' inside a string or a trigger
            if pending.strip(" \t\n;"):
                yield pending
            pending = ""


def _user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _objects(db: sqlite3.Connection) -> set[tuple[str, str]]:
    """The tables and indexes a database has, by kind and name (SQLite's own left out)."""
    rows = db.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {(str(kind), str(name)) for kind, name in rows}


class SqliteStore:
    """Base of the project's stores: a file at the newest of ``migrations`` once opened.

    ``migrations[0]`` is the store's tables as first created; the tables of this base class
    (``_TABLES``) are created with it. ``version`` is the file's schema version.
    """

    _TABLES = _BROKER_SCHEMA

    def __init__(self, path: Path, migrations: Sequence[Migration]) -> None:
        if not migrations:
            raise ValueError("a store needs at least its first migration, its tables")
        first = migrations[0]
        self.migrations: tuple[Migration, ...] = (
            replace(first, sql=first.sql + self._TABLES),
            *migrations[1:],
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        try:
            self._refuse_newer(_user_version(self._db))  # before anything is written
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self.version = self._migrate()
        except BaseException:
            self._db.close()
            raise

    @property
    def newest(self) -> int:
        """The newest schema version this code knows for the store."""
        return len(self.migrations)

    def _refuse_newer(self, version: int) -> None:
        if version > self.newest:
            raise StoreVersionError(self.path, version, self.newest)

    def _migrate(self) -> int:
        """Bring the file to ``newest``; the version it is at afterwards."""
        if _user_version(self._db) == self.newest:
            return self.newest  # no write lock taken on an ordinary start
        with self._tx() as db:
            found = _user_version(db)  # again: another process may have migrated meanwhile
            self._refuse_newer(found)
            if found == 0 and self._has_first_tables(db):
                found = 1  # made before schema versions, by the code of migration 1
            for number in range(found + 1, self.newest + 1):
                self.migrations[number - 1].apply(db)
            db.execute(f"PRAGMA user_version = {self.newest}")
        if found < self.newest:
            log.info(
                "%s: schema version %d -> %d (%s)",
                self.path,
                found,
                self.newest,
                "; ".join(m.summary for m in self.migrations[found:]),
            )
        return self.newest

    def _has_first_tables(self, db: sqlite3.Connection) -> bool:
        """Whether the file already has every table and index migration 1's SQL creates
        (checked against that SQL run on an empty database, not assumed)."""
        with closing(sqlite3.connect(":memory:", isolation_level=None)) as scratch:
            scratch.executescript(self.migrations[0].sql)
            wanted = _objects(scratch)
        return wanted <= _objects(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def followed_broker(self) -> str | None:
        """The cluster id of the broker this store last followed (``follow_broker``)."""
        with self._lock:
            row = self._db.execute("SELECT cluster_id FROM broker").fetchone()
        return None if row is None else str(row[0])

    def follow_broker(self, cluster_id: str) -> bool:
        """Remember that this store now follows the broker ``cluster_id``. True when it
        followed another one, or none yet: what the store kept about the previous broker's
        topics (``_forget_broker``) is dropped in the same transaction."""
        with self._tx() as db:
            row = db.execute("SELECT cluster_id FROM broker").fetchone()
            if row is not None and row[0] == cluster_id:
                return False
            db.execute("INSERT OR REPLACE INTO broker VALUES (0, ?)", (cluster_id,))
            self._forget_broker(db)
        return True

    def _forget_broker(self, db: sqlite3.Connection) -> None:
        """Drop what only made sense on the previous broker; nothing by default."""


class FeedOffsets(SqliteStore):
    """A store that also remembers how far a topic feed (``monitor.pipeline.feed``) has read,
    next to what the feed wrote, so that both survive a restart together."""

    _TABLES = _BROKER_SCHEMA + _OFFSETS_SCHEMA

    def _forget_broker(self, db: sqlite3.Connection) -> None:
        # Another broker's offsets: its topics are not these, so read these from the start.
        db.execute("DELETE FROM offsets")

    def remember_offset(self, topic: str, partition: int, next_offset: int) -> None:
        """Every record of ``topic[partition]`` before ``next_offset`` has been applied."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)", (topic, partition, next_offset)
            )

    def read_offsets(self) -> dict[tuple[str, int], int]:
        with self._lock:
            rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets").fetchall()
        return {(str(topic), int(number)): int(offset) for topic, number, offset in rows}
