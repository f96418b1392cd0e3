"""A store's tables once, in SQLite's DDL, and PostgreSQL's from it: one schema to read and
review, not two that drift apart.

The stores' DDL is plain: ``TEXT``, ``INTEGER``, ``REAL``, ``BLOB``, primary keys and indexes.
PostgreSQL gets 64-bit integers (views and offsets outgrow 32 bits), ``DOUBLE PRECISION``,
``BYTEA``, ``"window"`` quoted (a reserved word there), an explicit ``rowid`` where the store
orders by SQLite's implicit one (appended last, so ``INSERT ... VALUES`` lists stay the same),
and ``COLLATE "C"`` on the ISO times a store compares as text, so they compare byte by byte as
in SQLite, whatever the database's locale.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import partial

__all__ = ["postgresql_ddl"]

_TYPES = {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "BLOB": "BYTEA"}
_ROWID = "rowid BIGINT GENERATED ALWAYS AS IDENTITY"


def postgresql_ddl(sqlite: str, *, rowid: Iterable[str] = (), collate_c: Iterable[str] = ()) -> str:
    """``sqlite``'s tables in PostgreSQL. ``rowid``: tables that get one; ``collate_c``:
    ``table.column`` names of ISO times compared as text."""
    ddl = re.sub(r"\b(INTEGER|REAL|BLOB)\b", lambda m: _TYPES[m.group(1)], sqlite)
    ddl = re.sub(r'(?<!")\bwindow\b(?!")', '"window"', ddl)
    for table in rowid:
        ddl = _in_table(ddl, table, lambda body: body + f",\n    {_ROWID}")
    for name in collate_c:
        table, column = name.split(".")
        ddl = _in_table(ddl, table, partial(_collate_c, column=column))
    return ddl


def _collate_c(body: str, column: str) -> str:
    changed = re.sub(rf"\b{column} TEXT\b", f'{column} TEXT COLLATE "C"', body)
    if changed == body:
        raise ValueError(f"no TEXT column {column}")
    return changed


def _in_table(ddl: str, table: str, change: Callable[[str], str]) -> str:
    match = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?)\n\);", ddl, re.S)
    if match is None:
        raise ValueError(f"no table {table} in the schema")
    body = change(match.group(1))
    return ddl[: match.start(1)] + body + ddl[match.end(1) :]
