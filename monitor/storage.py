"""The SQLite plumbing that every per-host store shares (scores and alerts, crawl state,
notifier deliveries): one connection in WAL mode, serialised by a lock so that the event loop
and worker threads can both use it, and explicit transactions for writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FeedOffsets", "SqliteStore"]

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
        self._db.executescript(schema)
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


class FeedOffsets(SqliteStore):
    """A store that also remembers how far a topic feed (``monitor.pipeline.feed``) has read,
    next to what the feed wrote, so that both survive a restart together."""

    def __init__(self, path: Path, schema: str) -> None:
        super().__init__(path, schema + _OFFSETS_SCHEMA)

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
