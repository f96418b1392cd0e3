"""PostgreSQL's tables from a store's SQLite DDL: wider types, the reserved word quoted, an
explicit ``rowid`` last where asked, byte-wise order on the times asked, and a name that is
not in the schema is an error, not a silent no-op."""

from __future__ import annotations

import pytest

from monitor.storage import postgresql_ddl

SQLITE = """
CREATE TABLE IF NOT EXISTS flood (
    alert_key TEXT PRIMARY KEY,
    window INTEGER NOT NULL,
    seen_at REAL NOT NULL,
    due TEXT,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS flood_by_window ON flood (alert_key, window);
"""


def test_types_widen_window_is_quoted_and_rowid_comes_last() -> None:
    ddl = postgresql_ddl(SQLITE, rowid=["flood"], collate_c=["flood.due"])
    assert '"window" BIGINT NOT NULL' in ddl and "seen_at DOUBLE PRECISION" in ddl
    assert "hash BYTEA NOT NULL,\n    rowid BIGINT GENERATED ALWAYS AS IDENTITY\n);" in ddl
    assert 'due TEXT COLLATE "C"' in ddl
    assert 'ON flood (alert_key, "window")' in ddl and "flood_by_window" in ddl
    assert postgresql_ddl(ddl) == ddl, "translated twice: the same (window quoted once)"


def test_a_table_or_column_not_in_the_schema_is_an_error() -> None:
    with pytest.raises(ValueError, match="no table story"):
        postgresql_ddl(SQLITE, rowid=["story"])
    with pytest.raises(ValueError, match="no TEXT column seen"):
        postgresql_ddl(SQLITE, collate_c=["flood.seen"])
