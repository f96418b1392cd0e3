"""The PostgreSQL server the store tests run against: the machine's (127.0.0.1:5432, the
``test`` database) unless ``LIKENESS_TEST_POSTGRES_URL`` names another; ``make postgres``
starts the machine's when it is not running.

Each test gets schemas of its own, under a random prefix, dropped when it ends: tests never
see each other's rows, and nothing is left behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from monitor.storage.postgres import PostgresDatabase

__all__ = ["POSTGRES_URL", "postgres_namespace", "postgres_schemas", "require_postgres"]

POSTGRES_URL = os.environ.get(
    "LIKENESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def require_postgres(in_ci: bool) -> str:
    """The server's URL; skipped when it cannot be reached, failed under ``CI=true``."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {POSTGRES_URL} cannot be reached ({exc}); `make postgres`"
        if in_ci:
            pytest.fail(f"{message}; under CI=true it is required", pytrace=False)
        pytest.skip(message)
    return POSTGRES_URL


@contextmanager
def postgres_schemas(url: str) -> Iterator[Callable[[str], PostgresDatabase]]:
    """A maker of ``PostgresDatabase`` for a store name, in schemas dropped afterwards."""
    with postgres_namespace(url) as prefix:
        yield lambda name: PostgresDatabase(url, f"{prefix}_{name}")


@contextmanager
def postgres_namespace(url: str) -> Iterator[str]:
    """A fresh ``pipeline.state_namespace`` for workers of a test; its schemas are dropped
    afterwards."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}\\_%",)
            ).fetchall()
            for (schema,) in rows:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())
