"""The seam under every store: one database a store's tables live in, SQLite or PostgreSQL.

A store (``store.py``) writes its SQL once, in the subset both databases speak: ``?``
placeholders, ``INSERT ... ON CONFLICT``, ``CAST``, quoted identifiers where PostgreSQL
reserves a word. What differs is below this interface: how a connection is had (one file and a
lock; a pool of connections), how writes are serialised (SQLite's ``BEGIN IMMEDIATE``; an
advisory lock per store in PostgreSQL, so that a read-then-write of one replica never
interleaves with another's, exactly as on one host), and where the schema version is kept.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

__all__ = ["Connection", "Cursor", "Database"]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a store's SQL runs on: ``sqlite3.Connection`` is one as it is."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class Database(ABC):
    """Where one store's tables live. ``where`` names it in messages (never a password)."""

    dialect: ClassVar[str]
    local: ClassVar[bool]
    """Whether a call is answered on this host in microseconds (SQLite's file), rather than
    over a network: the roles run a remote store's calls off their event loop."""
    where: str

    def __str__(self) -> str:
        return self.where

    @abstractmethod
    def version(self) -> int:
        """The schema version the store's tables are at (0: none yet), read without writing."""

    def prepare(self) -> None:  # noqa: B027 - a hook: SQLite sets its journal here
        """Settings of the connection, once the version was found acceptable (nothing is
        written before that)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction, serialised with every other writer of this store: committed on
        success, rolled back on any exception."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """A connection for reads."""

    @abstractmethod
    def migrating(self) -> AbstractContextManager[Connection]:
        """A transaction no other process migrates the same store in at the same time."""

    @abstractmethod
    def stored_version(self, db: Connection) -> int:
        """The schema version, inside ``migrating``."""

    @abstractmethod
    def mark_version(self, db: Connection, version: int) -> None:
        """Record the schema version, inside ``migrating``."""

    def made_before_versions(self, db: Connection, first_sql: str) -> bool:
        """Whether tables at version 0 are those of migration 1, made before versions were
        kept (only SQLite files have such a past)."""
        return False

    @abstractmethod
    def json_text(self, document: str, *path: str, number: bool = False) -> str:
        """SQL for the value at ``path`` in the JSON ``document`` (a text column, or an element
        of ``json_elements``): text, or a 64-bit integer where ``number``; NULL if absent."""

    @abstractmethod
    def json_elements(self, document: str, *path: str) -> str:
        """A FROM item of the elements of the JSON array at ``path``, as ``h(value)``."""

    @abstractmethod
    def close(self) -> None: ...
