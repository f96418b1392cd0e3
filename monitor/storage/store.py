"""The plumbing every store shares (scores and alerts, stories, crawl state, deliveries,
reviews): schema migrations, the broker a store follows, a feed's offsets, over a ``Database``
that is one SQLite file on the role's own disk or one PostgreSQL schema every replica shares.

A store that keeps something only meaningful on one broker (a feed's offsets, the notifier's
parked alerts that the broker's retry topic also holds) also remembers which broker that was,
by cluster id: the embedded broker forgets every topic when it restarts while these stores
survive, and positions of the old broker applied to the new one hide its first records.

Every store carries a schema version: each store declares its migrations in order, per
database (its SQLite list and its PostgreSQL list, which started later and so is shorter),
migration 1 being its tables as first created, and opening a store runs those it has not had
yet, all in one transaction with the new version, so that a store is at one version or the
next, never between. A SQLite file made before versions (``user_version`` 0) that already has
migration 1's tables and indexes is taken as version 1; one without runs migration 1, whose
``CREATE ... IF NOT EXISTS`` also completes a file from before a table was added, as opening
always did. A store whose version is newer than the code's newest is refused
(``StoreVersionError``) before anything is written to it: a newer monitor wrote it, and this
one would misread it.

A schema change is a new ``Migration`` at the end of the store's lists, never an edit of one
already released: stores out there have run those. The tables of this module (``broker``,
``offsets``) are part of each store's migration 1; a change to them is a migration of every
store that has them.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import ClassVar, ParamSpec, TypeVar

from monitor.errors import StoreError, StoreVersionError
from monitor.storage.database import Connection, Database
from monitor.storage.sqlite import SqliteDatabase

__all__ = ["FeedOffsets", "Migration", "Store"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# "only" is a reserved word in PostgreSQL: quoted, as SQLite accepts too.
_BROKER_SCHEMA = """
CREATE TABLE IF NOT EXISTS broker (
    "only" INTEGER PRIMARY KEY CHECK ("only" = 0),
    cluster_id TEXT NOT NULL
);
"""

_OFFSETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


@dataclass(frozen=True)
class Migration:
    """One step of a store's schema: ``sql`` (statements separated by ``;``), then ``run`` if
    given, both inside the transaction that records the step's version."""

    summary: str
    sql: str = ""
    run: Callable[[Connection], None] | None = None

    def apply(self, db: Connection) -> None:
        # Statement by statement: SQLite's executescript would commit the transaction first.
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


class Store:
    """Base of the project's stores: tables at the newest of their migrations once opened.

    ``where`` is a SQLite file's path or a ``Database``. ``migrations`` are the SQLite
    schema's, ``postgresql`` the PostgreSQL schema's (a store without them cannot live there);
    ``[0]`` of each is the store's tables as first created, and the tables of this base class
    (``_TABLES``) are created with it. ``version`` is the store's schema version.
    """

    _TABLES: ClassVar[str] = _BROKER_SCHEMA

    def __init__(
        self,
        where: Path | Database,
        migrations: Sequence[Migration],
        *,
        postgresql: Sequence[Migration] = (),
    ) -> None:
        database = where if isinstance(where, Database) else SqliteDatabase(where)
        chosen = migrations if database.dialect == "sqlite" else postgresql
        if not chosen:
            database.close()
            raise StoreError(f"{database}: {type(self).__name__} has no {database.dialect} schema")
        first = chosen[0]
        self.migrations: tuple[Migration, ...] = (
            replace(first, sql=first.sql + self._TABLES),
            *chosen[1:],
        )
        self.database = database
        self._thread: ThreadPoolExecutor | None = None
        try:
            found = database.version()
            self._refuse_newer(found)  # before anything is written
            database.prepare()
            self.version = self.newest if found == self.newest else self._migrate()
        except BaseException:
            database.close()
            raise

    @property
    def where(self) -> str:
        return self.database.where

    @property
    def newest(self) -> int:
        """The newest schema version this code knows for the store."""
        return len(self.migrations)

    def _refuse_newer(self, version: int) -> None:
        if version > self.newest:
            raise StoreVersionError(self.where, version, self.newest)

    def _migrate(self) -> int:
        """Bring the store to ``newest`` (an ordinary start, at ``newest`` already, takes no
        write lock); the version it is at afterwards."""
        database = self.database
        with database.migrating() as db:
            found = database.stored_version(db)  # again: another process may have migrated
            self._refuse_newer(found)
            if found == 0 and database.made_before_versions(db, self.migrations[0].sql):
                found = 1  # made before schema versions, by the code of migration 1
            for number in range(found + 1, self.newest + 1):
                self.migrations[number - 1].apply(db)
            database.mark_version(db, self.newest)
        if found < self.newest:
            log.info(
                "%s: schema version %d -> %d (%s)",
                self.where,
                found,
                self.newest,
                "; ".join(m.summary for m in self.migrations[found:]),
            )
        return self.newest

    async def run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call(*args, **kwargs)``, one of this store's methods, from the event loop without
        holding it while a remote database answers: on PostgreSQL it runs on the store's own
        thread (one, so that calls keep the order they were made in); SQLite's local calls
        take microseconds and run as they are."""
        if self.database.local:
            return call(*args, **kwargs)
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"store-{self.where}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, partial(call, *args, **kwargs))

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        self.database.close()

    def _tx(self) -> AbstractContextManager[Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        return self.database.transaction()

    def _read(self) -> AbstractContextManager[Connection]:
        return self.database.reading()

    def followed_broker(self) -> str | None:
        """The cluster id of the broker this store last followed (``follow_broker``)."""
        with self._read() as db:
            row = db.execute("SELECT cluster_id FROM broker").fetchone()
        return None if row is None else str(row[0])

    def follow_broker(self, cluster_id: str) -> bool:
        """Remember that this store now follows the broker ``cluster_id``. True when it
        followed another one, or none yet: what the store kept about the previous broker's
        topics (``_forget_broker``) is dropped in the same transaction."""
        with self._tx() as db:
            row = db.execute("SELECT cluster_id FROM broker").fetchone()
            if row is not None and row[0] == cluster_id:
                return False
            db.execute(
                'INSERT INTO broker VALUES (0, ?) ON CONFLICT ("only") '
                "DO UPDATE SET cluster_id = excluded.cluster_id",
                (cluster_id,),
            )
            self._forget_broker(db)
        return True

    def _forget_broker(self, db: Connection) -> None:
        """Drop what only made sense on the previous broker; nothing by default."""


class FeedOffsets(Store):
    """A store that also remembers how far a topic feed (``monitor.pipeline.feed``) has read,
    next to what the feed wrote, so that both survive a restart together."""

    _TABLES = _BROKER_SCHEMA + _OFFSETS_SCHEMA

    def _forget_broker(self, db: Connection) -> None:
        # Another broker's offsets: its topics are not these, so read these from the start.
        db.execute("DELETE FROM offsets")

    def remember_offset(self, topic: str, partition: int, next_offset: int) -> None:
        """Every record of ``topic[partition]`` before ``next_offset`` has been applied."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO offsets VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                (topic, partition, next_offset),
            )

    def read_offsets(self) -> dict[tuple[str, int], int]:
        with self._read() as db:
            rows = db.execute("SELECT topic, partition, next_offset FROM offsets").fetchall()
        return {(str(topic), int(number)): int(offset) for topic, number, offset in rows}
