"""A store in one SQLite file on the role's own disk: the embedded default.

One connection in WAL mode, serialised by a lock so that the event loop and worker threads can
both use it; writes are ``BEGIN IMMEDIATE`` transactions, so two processes on one file (a
restart overlapping the old worker) take turns. The schema version is ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path

from monitor.storage.database import Connection, Database

__all__ = ["SqliteDatabase"]


class SqliteDatabase(Database):
    dialect = "sqlite"
    local = True

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.where = str(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()

    def version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def prepare(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._lock:
            yield self._db

    def migrating(self) -> AbstractContextManager[Connection]:
        return self.transaction()

    def stored_version(self, db: Connection) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def mark_version(self, db: Connection, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def made_before_versions(self, db: Connection, first_sql: str) -> bool:
        # Checked against that SQL run on an empty database, not assumed.
        with closing(sqlite3.connect(":memory:", isolation_level=None)) as scratch:
            scratch.executescript(first_sql)
            wanted = _objects(scratch)
        return wanted <= _objects(db)

    def json_text(self, document: str, *path: str, number: bool = False) -> str:
        return f"json_extract({document}, '$.{'.'.join(path)}')"  # numbers come as numbers

    def json_elements(self, document: str, *path: str) -> str:
        return f"json_each({document}, '$.{'.'.join(path)}') h"

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _objects(db: Connection) -> set[tuple[str, str]]:
    """The tables and indexes a database has, by kind and name (SQLite's own left out)."""
    rows = db.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {(str(kind), str(name)) for kind, name in rows}
