"""A store in PostgreSQL: state that every replica of a role shares, on any host.

Each store is a schema of its own (``<namespace>_<store>``, e.g. ``likeness_notify``): two
stores with a ``clips`` table never meet, and several monitors can share one database by
namespace. Connections come from a pool (psycopg 3), each with ``search_path`` set to the
store's schema, so the store's SQL is the same as on SQLite; ``?`` becomes psycopg's ``%s``.

Writes take a transaction-scoped advisory lock named after the store: writers of one store take
turns, as SQLite's ``BEGIN IMMEDIATE`` makes them on one host, so a read-then-write (the rank of
an alert in its flood window, a story's next copy number) means the same across replicas as in
one process. Dedup itself is the primary keys' (``ON CONFLICT DO NOTHING``), never a read. A
lock held for a millisecond per write is cheap next to a clip's scoring; the stores are not
written by the thousand per second.

The driver's calls are blocking; the roles make them off their event loop (``Store.run``: a
thread per store), so a distant database slows a role's records, not its loop.

A connection is checked as it leaves the pool (an empty query), so one the server dropped while
idle is replaced, not failed on. A database that cannot be reached when a store opens is a
``StoreError`` (the role does not start, and says why); one that cannot be reached later within
the pool's timeout, or drops a connection in the middle of a transaction, is
``StoreUnavailableError``, a ``ReadAgain``: the record is read again, never dead-lettered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from monitor.errors import ConfigError, StoreError, StoreUnavailableError
from monitor.storage.database import Connection, Cursor, Database

__all__ = ["PostgresDatabase", "redact"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresDatabase(Database):
    """The schema ``schema`` of the database at ``url`` (``postgresql://user@host/db``)."""

    dialect = "postgresql"
    local = False

    def __init__(
        self,
        url: str,
        schema: str,
        *,
        max_connections: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(f"{schema!r} is not a schema name (lower case, digits, _)")
        self.schema = schema
        self.where = f"{redact(url)} schema {schema}"
        self._lock_key = f"likeness-monitor:{schema}"
        self.application_name = self._lock_key[:63]
        """What the server's ``pg_stat_activity`` calls this store's connections."""
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={
                "autocommit": True,
                "options": f"-c search_path={schema}",
                "application_name": self.application_name,
            },
            timeout=connect_timeout_s,
            name=schema,
            open=False,
            # A connection the server dropped while idle (a restart, a failover, an idle
            # timeout) is replaced before it is handed out, not failed on: one round trip.
            check=psycopg_pool.ConnectionPool.check_connection,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            # At start a configuration matter (the URL, the server, the network): said as one.
            raise StoreError(
                f"{self.where}: the state database cannot be reached within "
                f"{connect_timeout_s:g} s: {exc}"
            ) from exc

    def version(self) -> int:
        with self.reading() as db:
            (table,) = db.execute("SELECT to_regclass('store_version')").fetchone()
            if table is None:
                return 0
            return self.stored_version(db)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._unavailable(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))
            yield _Placeholders(conn)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._unavailable(), self._pool.connection() as conn:
            yield _Placeholders(conn)

    @contextmanager
    def migrating(self) -> Iterator[Connection]:
        with self.transaction() as db:
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            db.execute("CREATE TABLE IF NOT EXISTS store_version (version INTEGER NOT NULL)")
            yield db

    def stored_version(self, db: Connection) -> int:
        row = db.execute("SELECT max(version) FROM store_version").fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def mark_version(self, db: Connection, version: int) -> None:
        db.execute("DELETE FROM store_version")
        db.execute("INSERT INTO store_version VALUES (?)", (version,))

    def json_text(self, document: str, *path: str, number: bool = False) -> str:
        # The cast is a no-op on an element of json_elements, already jsonb.
        text = f"(CAST({document} AS jsonb) #>> '{{{','.join(path)}}}')"
        return f"CAST({text} AS BIGINT)" if number else text

    def json_elements(self, document: str, *path: str) -> str:
        return f"jsonb_array_elements(CAST({document} AS jsonb) #> '{{{','.join(path)}}}') h(value)"

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise StoreUnavailableError(self.where, exc) from exc


class _Placeholders:
    """A psycopg connection that takes the stores' ``?`` placeholders."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if not parameters:
            return self._conn.execute(sql.encode())  # as it is: no placeholders, maybe several
        return self._conn.execute(_with_percent_placeholders(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(_with_percent_placeholders(sql), parameters)
        return cursor


@lru_cache(maxsize=512)
def _with_percent_placeholders(sql: str) -> bytes:
    return sql.replace("%", "%%").replace("?", "%s").encode()


def redact(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
