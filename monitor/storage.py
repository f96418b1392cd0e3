"""The SQLite plumbing that every per-host store shares (scores and alerts, crawl state,
notifier deliveries): one connection in WAL mode, serialised by a lock so that the event loop
and worker threads can both use it, and explicit transactions for writes.

A store that keeps something only meaningful on one broker (a feed's offsets, the notifier's
parked alerts that the broker's retry topic also holds) also remembers which broker that was,
by cluster id: the embedded broker forgets every topic when it restarts while these files
survive, and positions of the old broker applied to the new one hide its first records.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FeedOffsets", "SqliteStore"]

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


class SqliteStore:
    """Base of the project's stores: ``schema`` is run on open (``CREATE ... IF NOT EXISTS``)."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema + _BROKER_SCHEMA)
        self._lock = threading.Lock()

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

    def __init__(self, path: Path, schema: str) -> None:
        super().__init__(path, schema + _OFFSETS_SCHEMA)

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
